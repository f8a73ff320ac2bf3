// Package api holds what node/ and client/ must agree on byte for byte: the JSON wire types
// of the HTTP contract and the stable error vocabulary (codes, their HTTP statuses and
// whether a retry is safe).
//
// It imports only the standard library, so every other package may depend on it and it may
// depend on none of them.
package api
