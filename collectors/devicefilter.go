package collectors

import (
	"fmt"
	"regexp"
)

// deviceFilter drops names (devices, mount points, fs types) by an exclude
// or an include regular expression, as node_exporter's --…-exclude and
// --…-include flag pairs do. The zero value accepts everything.
type deviceFilter struct {
	exclude, include *regexp.Regexp
}

// filterFlags are one exclude/include flag pair as parsed. excludeSet
// says the operator gave the exclude flag explicitly.
type filterFlags struct {
	exclude, include string
	excludeSet       bool
}

// addFilterFlags registers --collector.<name>.<exclude> (with a default) and
// --collector.<name>.<include> on app and returns where they land.
func addFilterFlags(app FlagApp, excludeFlag, excludeDefault, excludeHelp, includeFlag, includeHelp string) *filterFlags {
	f := &filterFlags{}
	app.Flag(excludeFlag, excludeHelp).Default(excludeDefault).IsSetByUser(&f.excludeSet).StringVar(&f.exclude)
	app.Flag(includeFlag, includeHelp).StringVar(&f.include)
	return f
}

// build compiles the pair. As node_exporter does, an include
// given without an explicit exclude replaces the default exclude; both
// given explicitly is an error naming the flags.
func (f *filterFlags) build(excludeFlag, includeFlag string) (deviceFilter, error) {
	exclude := f.exclude
	if f.include != "" {
		if f.excludeSet && exclude != "" {
			return deviceFilter{}, fmt.Errorf("--%s and --%s are mutually exclusive", excludeFlag, includeFlag)
		}
		exclude = ""
	}
	return newDeviceFilter(excludeFlag, exclude, includeFlag, f.include)
}

// newDeviceFilter compiles an exclude and an include pattern, both applied
// when both are given (node_exporter's behaviour for the collectors whose
// flag pair has no default); an empty pattern filters nothing. Patterns are
// unanchored, as node_exporter's are. Errors name the flag.
func newDeviceFilter(excludeFlag, exclude, includeFlag, include string) (deviceFilter, error) {
	var df deviceFilter
	var err error
	if exclude != "" {
		if df.exclude, err = regexp.Compile(exclude); err != nil {
			return deviceFilter{}, fmt.Errorf("--%s: %w", excludeFlag, err)
		}
	}
	if include != "" {
		if df.include, err = regexp.Compile(include); err != nil {
			return deviceFilter{}, fmt.Errorf("--%s: %w", includeFlag, err)
		}
	}
	return df, nil
}

// ignored says whether name is filtered out.
func (f deviceFilter) ignored(name string) bool {
	return (f.exclude != nil && f.exclude.MatchString(name)) ||
		(f.include != nil && !f.include.MatchString(name))
}
