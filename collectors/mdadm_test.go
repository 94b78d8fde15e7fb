package collectors

import (
	"errors"
	"testing"
)

// The fixture cases are golden cases in testdata/mdadm.

func TestMdadmNotLoaded(t *testing.T) {
	t.Parallel()
	c, err := buildRegistered(t, "mdadm", treeEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exposition(t, c); !errors.Is(err, ErrNoData) || len(out) != 0 {
		t.Errorf("want ErrNoData and no output without /proc/mdstat, got %v and %q", err, out)
	}
}
