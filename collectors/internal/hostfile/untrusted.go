package hostfile

import (
	"strings"
)

// Host files are input the agent cannot trust: a corrupt /proc file, a
// fixture, a hostile container's view. These helpers keep such input from
// turning into a panic.

// ValidLabel makes text read from a file safe as a label value: client
// metrics reject (and MustNewConstMetric panics on) invalid UTF-8, which a
// corrupt or hostile file can hold. node_exporter replaces it the same way
// for mount labels.
func ValidLabel(s string) string {
	return strings.ToValidUTF8(s, "\uFFFD")
}

// GuardParse runs a procfs reader and turns a panic into an error: some
// procfs parsers index fields without checking how many there are
// (procfs v0.23.0 net_dev.go panics on a /proc/net/dev line with fewer than
// 16 counters).
func GuardParse[T any](what string, read func() (T, error)) (v T, err error) {
	defer GuardProcfs(what, &err)
	return read()
}

// StringOrEmpty is an optional sysfs attribute (procfs's *string) as a
// label value.
func StringOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
