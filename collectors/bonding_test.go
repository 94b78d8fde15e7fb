package collectors

import (
	"errors"
	"testing"
)

// The fixture cases are golden cases in testdata/bonding.

func TestBondingNotLoaded(t *testing.T) {
	t.Parallel()
	c, err := buildRegistered(t, "bonding", treeEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exposition(t, c); !errors.Is(err, ErrNoData) || len(out) != 0 {
		t.Errorf("want ErrNoData and no output without bonding_masters, got %v and %q", err, out)
	}
}
