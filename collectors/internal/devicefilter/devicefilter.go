package devicefilter

import (
	"fmt"
	"regexp"

	"github.com/nodeagent/nodeagent/collectors"
)

// Filter drops names (devices, mount points, fs types) by an exclude
// or an include regular expression, as node_exporter's --…-exclude and
// --…-include flag pairs do. The zero value accepts everything.
type Filter struct {
	exclude, include *regexp.Regexp
}

// Flags are one exclude/include flag pair as parsed. excludeSet
// says the operator gave the exclude flag explicitly.
type Flags struct {
	Exclude, include string
	excludeSet       bool
}

// AddFlags registers --collector.<name>.<exclude> (with a default) and
// --collector.<name>.<include> on app and returns where they land.
func AddFlags(app collectors.FlagApp, excludeFlag, excludeDefault, excludeHelp, includeFlag, includeHelp string) *Flags {
	f := &Flags{}
	app.Flag(excludeFlag, excludeHelp).Default(excludeDefault).IsSetByUser(&f.excludeSet).StringVar(&f.Exclude)
	app.Flag(includeFlag, includeHelp).StringVar(&f.include)
	return f
}

// Build compiles the pair. As node_exporter does, an include
// given without an explicit exclude replaces the default exclude; both
// given explicitly is an error naming the flags.
func (f *Flags) Build(excludeFlag, includeFlag string) (Filter, error) {
	exclude := f.Exclude
	if f.include != "" {
		if f.excludeSet && exclude != "" {
			return Filter{}, fmt.Errorf("--%s and --%s are mutually exclusive", excludeFlag, includeFlag)
		}
		exclude = ""
	}
	return New(excludeFlag, exclude, includeFlag, f.include)
}

// New compiles an exclude and an include pattern, both applied
// when both are given (node_exporter's behaviour for the collectors whose
// flag pair has no default); an empty pattern filters nothing. Patterns are
// unanchored, as node_exporter's are. Errors name the flag.
func New(excludeFlag, exclude, includeFlag, include string) (Filter, error) {
	var df Filter
	var err error
	if exclude != "" {
		if df.exclude, err = regexp.Compile(exclude); err != nil {
			return Filter{}, fmt.Errorf("--%s: %w", excludeFlag, err)
		}
	}
	if include != "" {
		if df.include, err = regexp.Compile(include); err != nil {
			return Filter{}, fmt.Errorf("--%s: %w", includeFlag, err)
		}
	}
	return df, nil
}

// Ignored says whether name is filtered out.
func (f Filter) Ignored(name string) bool {
	return (f.exclude != nil && f.exclude.MatchString(name)) ||
		(f.include != nil && !f.include.MatchString(name))
}
