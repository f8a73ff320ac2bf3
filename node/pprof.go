package node

import "net/http/pprof"

// mountPprof serves the runtime profiles at /debug/pprof/ (Config.EnablePprof). They show
// the process's internals (goroutine stacks with request data in them), so auth puts them
// behind the admin role.
func mountPprof(mux *routeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
