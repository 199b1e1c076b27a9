package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"
)

// Formatting is most of the cost of rendering (go/format: parse and print,
// about 3 MB/s), and its input rarely changes between runs of go generate:
// the same interfaces render the same unformatted source. go/format is a
// pure function of that source and of the Go release cachegen was built
// with, so its results are kept in a cache directory keyed by both.
//
// An entry is the SHA-256 of the formatted source followed by the source;
// one that does not match its sum (a torn or damaged file) is a miss. Every
// error of the cache is a miss or a skipped write: it can make a run slower,
// never different.

// formatCacheVersion changes when what an entry holds changes.
const formatCacheVersion = "cachegen format 1"

// formatSource formats src, through the cache in dir ("" for none).
func formatSource(dir string, src []byte) ([]byte, error) {
	if dir == "" {
		return format.Source(src)
	}
	h := sha256.New()
	h.Write([]byte(formatCacheVersion + "\x00" + goruntime.Version() + "\x00"))
	h.Write(src)
	key := hex.EncodeToString(h.Sum(nil))
	path := filepath.Join(dir, key[:2], key)
	if out, ok := readFormatEntry(path); ok {
		return out, nil
	}
	out, err := format.Source(src)
	if err != nil {
		return nil, err
	}
	writeFormatEntry(dir, path, out)
	return out, nil
}

// formatCacheMaxEntry bounds what an entry may hold: a generated file is
// far smaller.
const formatCacheMaxEntry = 64 << 20

func readFormatEntry(path string) ([]byte, bool) {
	// Only a regular file is read: a FIFO or a link to a device in its
	// place would hang the run or fill the memory.
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > formatCacheMaxEntry {
		return nil, false
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < sha256.Size {
		return nil, false
	}
	sum, out := b[:sha256.Size], b[sha256.Size:]
	if got := sha256.Sum256(out); !bytes.Equal(got[:], sum) {
		return nil, false
	}
	// Entries in use stay; the trim removes those unused for a while.
	if time.Since(fi.ModTime()) > time.Hour {
		now := time.Now()
		os.Chtimes(path, now, now)
	}
	return out, true
}

// formatCacheTrimAge is how long an entry may go unused before a trim
// removes it; trims run at most once per formatCacheTrimEvery.
const (
	formatCacheTrimAge   = 7 * 24 * time.Hour
	formatCacheTrimEvery = 24 * time.Hour
)

func writeFormatEntry(dir, path string, out []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return
	}
	sum := sha256.Sum256(out)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return
	}
	_, werr := tmp.Write(append(sum[:], out...))
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		os.Remove(tmp.Name())
		return
	}
	// A rename is atomic: a concurrent run reads the old entry, the new
	// one or none, never half of one.
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return
	}
	trimFormatCache(dir)
}

// trimFormatCache removes the entries unused for formatCacheTrimAge, once
// per formatCacheTrimEvery (the mtime of a marker file says when).
func trimFormatCache(dir string) {
	marker := filepath.Join(dir, "trimmed")
	if fi, err := os.Stat(marker); err == nil && time.Since(fi.ModTime()) < formatCacheTrimEvery {
		return
	}
	now := time.Now()
	// Touched, never truncated: the name may be a file of the user's.
	if err := os.Chtimes(marker, now, now); errors.Is(err, fs.ErrNotExist) {
		f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if err != nil {
			return
		}
		f.Close()
	} else if err != nil {
		return
	}
	// Only what the cache writes: the directory may hold other files.
	entries, _ := filepath.Glob(filepath.Join(dir, "??", "*"))
	for _, e := range entries {
		if !isFormatCacheFile(e) {
			continue
		}
		if fi, err := os.Lstat(e); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > formatCacheTrimAge {
			os.Remove(e)
		}
	}
}

// isFormatCacheFile reports whether path is named as an entry (its key, in
// the directory of the key's first two digits) or a temporary file of one.
func isFormatCacheFile(path string) bool {
	name, sub := filepath.Base(path), filepath.Base(filepath.Dir(path))
	if strings.HasPrefix(name, ".tmp-") {
		return isHex(sub)
	}
	return len(name) == 2*sha256.Size && isHex(name) && name[:2] == sub
}

func isHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// DefaultFormatCache is the cache directory the command uses: the
// CACHEGEN_CACHE environment variable ("off" for none; a relative path is
// none too, as go does with GOCACHE: go generate runs the command in each
// package's directory), else cachegen's directory in the user's cache
// directory ("" when there is none).
//
// Like go's build cache, the directory is trusted: whoever can write to it
// can choose what the generator writes.
func DefaultFormatCache() string {
	switch v := os.Getenv("CACHEGEN_CACHE"); {
	case v == "off" || v != "" && !filepath.IsAbs(v):
		return ""
	case v == "":
		dir, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "cachegen", "format")
	default:
		return v
	}
}
