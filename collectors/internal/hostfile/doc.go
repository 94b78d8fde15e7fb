// Package hostfile reads the host files that procfs does not parse, and
// keeps untrusted input from them (a corrupt /proc file, a hostile
// container's view, a fixture) from turning into a panic or an invalid
// exposition: small bounded readers, guards around procfs parsers, and
// label sanitising. The host and container collectors share it.
package hostfile
