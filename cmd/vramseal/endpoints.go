package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vramseal/vramseal/audit"
	"github.com/vramseal/vramseal/gpuhealth"
	"github.com/vramseal/vramseal/messages"
)

// endpointList is what / answers: the endpoints and what each serves.
const endpointList = `vramseal worker
/metrics  Prometheus metrics: vram_* and vramseal_build_info
/healthz  200 while the worker runs, 503 once it has stopped
/readyz   200 once every shard was sealed and verified within the freshness window and nothing failed, else 503 and why
/shards   the sealed shards as JSON: id, device, size, digest, sealed_at, last_verified, tensors
/audit/head  the audit log's head as JSON: worker_id, seq, mac and time of its last durable record
`

// newHandler serves the worker's endpoints: / (the list), /metrics
// (Prometheus), /healthz (200 while the worker runs), /readyz (200 once
// every shard is freshly verified), /shards (JSON) and /audit/head (JSON,
// from auditHead).
func newHandler(rt runtimeView, stopped <-chan struct{}, m *metrics, ready *gpuhealth.Readiness, auditHead func() audit.Head) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /audit/head", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(auditHead())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if isClosed(stopped) {
			http.Error(w, "worker stopped", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready.Check(r.Context(), rt, stopped, time.Now()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
		if warning := ready.Warning(); warning != "" {
			fmt.Fprintln(w, "warning: "+warning)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, endpointList)
	})
	mux.HandleFunc("GET /shards", func(w http.ResponseWriter, r *http.Request) {
		shards, err := rt.Shards(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		if shards == nil {
			shards = []messages.ShardStatus{} // [] rather than null
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(shards)
	})
	return mux
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
