// Package deploy holds no code: it is the home of the ways to run flashstock (a container
// image, docker compose, a systemd unit, a Kubernetes StatefulSet) and of the tests that
// keep them honest: every file parses, and every stockd setting they use is one that
// stockd has (checked against `stockd --help` of a freshly built binary).
//
// healthcheck/ is the container image's HEALTHCHECK command.
package deploy
