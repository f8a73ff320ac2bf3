// Package ui is the operator's dashboard that every node serves at /ui/: the cluster's
// members, roles, leader, term, applied index and lag; the SKUs with live available,
// reserved and sold counts; deductions/s and rejections/s as charts.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary (no build step, no
// third-party code). It reads the node's public HTTP API from the same origin, by URLs
// relative to the node's root (../v1/cluster, ../v1/skus, ../v1/skus/{sku}/watch,
// ../metrics), so it works wherever the API works, behind the same auth and TLS.
//
// The package never imports node, fsm or client and holds no state: it only serves files.
// A node mounts it with
//
//	mux.Handle("GET /ui/", http.StripPrefix("/ui", ui.Handler()))
package ui
