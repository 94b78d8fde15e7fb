// Package devicefilter is node_exporter's exclude/include regular
// expression flag pairs (--collector.<name>.device-exclude and the like),
// shared by the host collectors that filter devices, mount points or
// filesystem types.
package devicefilter
