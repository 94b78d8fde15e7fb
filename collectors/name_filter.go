package collectors

import (
	"fmt"
	"regexp"
)

// nameFilter is node_exporter's device filter for the collectors whose
// --collector.<name>.device-include/-exclude flags node_exporter documents as
// mutually exclusive without enforcing it (arp, infiniband): a name is
// skipped when it matches the exclude pattern or fails to match the include
// pattern, both applied when both are given. Patterns are unanchored, as
// node_exporter's are.
type nameFilter struct {
	include, exclude *regexp.Regexp
}

// newNameFilter compiles the patterns of the named flags; an empty pattern
// filters nothing.
func newNameFilter(includeFlag, include, excludeFlag, exclude string) (nameFilter, error) {
	var f nameFilter
	var err error
	if include != "" {
		if f.include, err = regexp.Compile(include); err != nil {
			return f, fmt.Errorf("--%s: %w", includeFlag, err)
		}
	}
	if exclude != "" {
		if f.exclude, err = regexp.Compile(exclude); err != nil {
			return f, fmt.Errorf("--%s: %w", excludeFlag, err)
		}
	}
	return f, nil
}

// skip reports whether name is filtered out.
func (f nameFilter) skip(name string) bool {
	return (f.exclude != nil && f.exclude.MatchString(name)) ||
		(f.include != nil && !f.include.MatchString(name))
}
