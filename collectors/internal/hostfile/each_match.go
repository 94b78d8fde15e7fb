package hostfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// EachMatch calls read for every path matching pattern, one at a time.
// procfs's whole-subsystem readers (xfs.SysStats, btrfs.Stats, bcache.Stats)
// stop at the first bad filesystem without naming it; one at a time, read
// names it and the others are still served. A path that vanished since the
// listing (unmounted, exported: read returns fs.ErrNotExist) is skipped. It
// returns how many reads succeeded and the other errors joined, or ctx's
// error once the scrape is over.
func EachMatch(ctx context.Context, pattern string, read func(path string) error) (int, error) {
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", pattern, err)
	}
	var errs []error
	n := 0
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		switch err := read(p); {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		default:
			n++
		}
	}
	return n, errors.Join(errs...)
}
