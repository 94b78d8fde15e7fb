// Package descs caches the prometheus.Descs of families whose names come
// from the kernel (vmstat fields, netstat and sockstat counters,
// bcachefs counters), so that each name is built once rather than every scrape.
package descs
