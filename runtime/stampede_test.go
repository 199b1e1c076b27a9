package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cachegen/cachegen/internal/testenv"
)

const stampedeProcs, stampedeGoroutines = 4, 1000

// TestStampede: 1000 goroutines in each of 4 processes miss one key at the
// same moment; the source is called exactly once in all.
func TestStampede(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		cl, isCluster := rdb.(*redis.ClusterClient)
		ns := testNamespace(t)
		start := time.Now().Add(time.Second).UnixNano()
		var wg sync.WaitGroup
		outs := make([]string, stampedeProcs)
		errs := make([]error, stampedeProcs)
		for i := 0; i < stampedeProcs; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), "CACHEGEN_STAMPEDE_NS="+ns, "CACHEGEN_STAMPEDE_START="+strconv.FormatInt(start, 10))
				if isCluster {
					cmd.Env = append(cmd.Env, "CACHEGEN_CLUSTER_ADDRS="+strings.Join(cl.Options().Addrs, ","))
				}
				out, err := cmd.CombinedOutput()
				outs[i], errs[i] = string(out), err
			}()
		}
		wg.Wait()
		total := 0
		re := regexp.MustCompile(`stampede: calls=(\d+) ok=(\d+)`)
		for i := range outs {
			m := re.FindStringSubmatch(outs[i])
			if errs[i] != nil || m == nil {
				t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
			}
			calls, _ := strconv.Atoi(m[1])
			if ok, _ := strconv.Atoi(m[2]); ok != stampedeGoroutines {
				t.Fatalf("child %d: only %d of %d goroutines got the value", i, ok, stampedeGoroutines)
			}
			total += calls
		}
		if total != 1 {
			t.Logf("children:\n%s", strings.Join(outs, "\n"))
			t.Fatalf("source called %d times across %d processes × %d goroutines, want 1", total, stampedeProcs, stampedeGoroutines)
		}
	})
}

// stampedeChild is one process of TestStampede: TestMain runs it instead of
// the tests when the parent re-executes the test binary.
func stampedeChild(ns string) {
	var rdb redis.UniversalClient
	if addrs := os.Getenv("CACHEGEN_CLUSTER_ADDRS"); addrs != "" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ","), ContextTimeoutEnabled: true})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(), ContextTimeoutEnabled: true})
	}
	// A generous budget: under -race on a loaded 2-core machine a slow reply
	// must not count as a Redis failure (fail-open is fault_test.go's subject);
	// here the lease protocol alone must hold the line.
	c := New(rdb, WithNamespace(ns), WithLogger(quietLogger()), WithTimeout(2*time.Second))
	ks := userSpace(c)
	var calls atomic.Int64
	src := func(ctx context.Context) (*user, error) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond) // a slow query: everyone else piles up
		return &user{ID: 1, Name: "Ada"}, nil
	}
	startNs, _ := strconv.ParseInt(os.Getenv("CACHEGEN_STAMPEDE_START"), 10, 64)
	time.Sleep(time.Until(time.Unix(0, startNs)))
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < stampedeGoroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			key := userKey(ks, 1)
			v, hit, err := lookup3(ctx, ks, key)
			if !hit {
				v, err = loadVia(ctx, ks, key, Loader[*user]{Load: src})
			}
			if err == nil && v != nil && v.Name == "Ada" {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("stampede: calls=%d ok=%d stats=%v\n", calls.Load(), ok.Load(), c.Stats())
}

// TestStampedeRounds repeats short stampedes in which "processes" (Caches on
// one namespace, each with its own flights) join at slightly different
// times: a caller whose lookup missed just before another's fill landed must
// take that value, not the lease the fill freed.
func TestStampedeRounds(t *testing.T) {
	backends(t, func(t *testing.T, rdb redis.UniversalClient) {
		ns := WithNamespace(testNamespace(t))
		var caches []*Keyspace[*user]
		for i := 0; i < 4; i++ {
			caches = append(caches, userSpace(New(rdb, ns, WithLogger(quietLogger()), WithTimeout(2*time.Second),
				WithPoll(time.Millisecond, 2*time.Millisecond))))
		}
		for round := int64(0); round < 60; round++ {
			var calls atomic.Int64
			src := func(ctx context.Context) (*user, error) {
				calls.Add(1)
				time.Sleep(2 * time.Millisecond)
				return &user{ID: round, Name: "r"}, nil
			}
			var wg sync.WaitGroup
			for p, ks := range caches {
				for g := 0; g < 16; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						time.Sleep(time.Duration(p*700+g*50) * time.Microsecond)
						ctx := context.Background()
						key := userKey(ks, round)
						if _, hit, _ := lookup3(ctx, ks, key); !hit {
							_, _ = loadVia(ctx, ks, key, Loader[*user]{Load: src})
						}
					}()
				}
			}
			wg.Wait()
			if n := calls.Load(); n != 1 {
				t.Fatalf("round %d: %d source calls, want 1", round, n)
			}
		}
	})
}
