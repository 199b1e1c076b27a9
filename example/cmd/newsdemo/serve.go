package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cachegen/cachegen/runtime"
	"github.com/cachegen/cachegen/runtime/cacheprom"
	"github.com/cachegen/cachegen/runtime/health"
)

// serveHealth serves the cache's health page, its JSON and its Prometheus
// metrics on addr until ctx ends (Ctrl-C).
func serveHealth(ctx context.Context, addr string, out io.Writer, caches ...*runtime.Cache) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(cacheprom.NewCollector(caches...))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", health.Handler(caches...))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "\nhealth page: http://%s/ (JSON: /json, Prometheus: /metrics); Ctrl-C to stop\n", hostPort(ln.Addr()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// hostPort names a listening address so it can be opened in a browser.
func hostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
