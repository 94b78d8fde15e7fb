package node

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// fakeAdjtimex answers like adjtimex(2) on a host synchronised by chrony.
func fakeAdjtimex(state int, status int32) func(*unix.Timex) (int, error) {
	return func(tx *unix.Timex) (int, error) {
		*tx = unix.Timex{
			Offset:    -52000,
			Freq:      -1234567,
			Maxerror:  16500,
			Esterror:  250,
			Status:    status,
			Constant:  7,
			Precision: 1,
			Tolerance: 32768000,
			Tick:      10000,
			Ppsfreq:   65536,
			Jitter:    1500,
			Shift:     2,
			Stabil:    131072,
			Jitcnt:    3,
			Calcnt:    11,
			Errcnt:    1,
			Stbcnt:    4,
			Tai:       37,
		}
		return state, nil
	}
}

func TestTimexGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		golden string
		state  int
		status int32
	}{
		// TIME_OK, STA_PLL|STA_NANO: offset and jitter in nanoseconds.
		{"timex/synced-nano.golden.prom", 0, 0x2001},
		// TIME_ERROR, STA_UNSYNC: microseconds.
		{"timex/unsynced-micro.golden.prom", 5, 0x0040},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			t.Parallel()
			collectortest.CompareCollectorGolden(t, newTimexCollector(collectortest.Logger(t), fakeAdjtimex(tc.state, tc.status)), filepath.Join("testdata", tc.golden))
		})
	}
}

func TestTimexErrors(t *testing.T) {
	t.Parallel()
	eperm := newTimexCollector(collectortest.Logger(t), func(*unix.Timex) (int, error) { return 0, syscall.EPERM })
	if out, err := collectortest.Exposition(t, eperm); !errors.Is(err, collectors.ErrNoData) || len(out) != 0 {
		t.Errorf("EPERM: want ErrNoData and no output (seccomp may forbid adjtimex), got %v and %q", err, out)
	}
	einval := newTimexCollector(collectortest.Logger(t), func(*unix.Timex) (int, error) { return 0, syscall.EINVAL })
	if out, err := collectortest.Exposition(t, einval); !errors.Is(err, syscall.EINVAL) || errors.Is(err, collectors.ErrNoData) || len(out) != 0 {
		t.Errorf("EINVAL: want the error and no output, got %v and %q", err, out)
	}
}
