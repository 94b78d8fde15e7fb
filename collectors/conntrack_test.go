package collectors

import (
	"errors"
	"testing"
)

// The fixture cases are golden cases in testdata/conntrack.

func TestConntrackNotLoaded(t *testing.T) {
	t.Parallel()
	c, err := buildRegistered(t, "conntrack", treeEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exposition(t, c); !errors.Is(err, ErrNoData) || len(out) != 0 {
		t.Errorf("want ErrNoData and no output without nf_conntrack, got %v and %q", err, out)
	}
}
