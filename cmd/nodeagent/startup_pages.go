package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Package initialisation reads several megabytes of the executable that
// no scrape needs again: the init functions and tables of client-go,
// apimachinery, the API types, the TLS and compression libraries. The
// pages stay mapped, and counted in the process's RSS, for as long as it
// runs (docs/performance.md: ~19 MiB of file pages before the first
// scrape). Once the agent has answered its first request (a scrape, a
// probe: start-up is over), releaseStartupPages unmaps the executable's
// read-only mappings (MADV_DONTNEED); a page's next use maps it back from
// the page cache, where it still is (a minor fault), so that what stays
// mapped is what requests use. The page cache keeps the pages, charged to
// whichever cgroup read them first, until the kernel needs the memory;
// unmapped, they are reclaimed before the mapped code of running programs.
//
// DONTNEED in a private mapping also drops a page that was copied on
// write, and that is how a uprobe's breakpoint sits in a traced process's
// code (eBPF tracers attach so to Go programs): a mapping that holds
// anonymous pages (/proc/self/smaps) is left as it is. MADV_PAGEOUT, which
// would keep them, pages file pages out only for a process that could
// open the file for writing, which the agent, running as its own user,
// cannot. Writable mappings (data, bss) are never touched.

// releaseAfterFirstAnswer wraps h so that the first request it has
// answered releases the executable's start-up pages, on a goroutine of
// its own.
func releaseAfterFirstAnswer(h http.Handler, logger *slog.Logger) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		once.Do(func() {
			go func() {
				n, err := releaseStartupPages()
				if err != nil {
					logger.Info("the executable's start-up pages stay resident", "err", err)
					return
				}
				// Once per process, at info: the drop in RSS it explains
				// is what an operator sees after the first scrape.
				logger.Info("released the executable's start-up pages (--release-startup-pages)", "mapped_bytes", n)
			}()
		})
	})
}

// startupMapping is an address range of the executable to release.
type startupMapping struct {
	start, end uintptr
}

// startupMappings are the read-only private mappings of the executable
// exe among maps: its code, read-only data and the runtime's tables.
func startupMappings(maps []*procfs.ProcMap, exe string) []startupMapping {
	var out []startupMapping
	for _, m := range maps {
		if exe == "" || m.Pathname != exe || m.Perms == nil || m.Perms.Write || !m.Perms.Private || m.EndAddr <= m.StartAddr {
			continue
		}
		out = append(out, startupMapping{start: m.StartAddr, end: m.EndAddr})
	}
	return out
}

// releaseStartupPages unmaps the read-only pages of the running
// executable (above) and says how many bytes of mappings it released. It
// reads the process's own /proc, not --path.procfs (the host's, in a
// DaemonSet).
func releaseStartupPages() (uint64, error) {
	self, err := procfs.Self()
	if err != nil {
		return 0, err
	}
	exe, err := self.Executable()
	if err != nil {
		return 0, err
	}
	maps, err := self.ProcMaps()
	if err != nil {
		return 0, err
	}
	ranges := startupMappings(maps, exe)
	if len(ranges) == 0 {
		return 0, fmt.Errorf("no read-only mapping of %s in /proc/self/maps", exe)
	}
	const smaps = "/proc/self/smaps"
	f, err := os.Open(smaps)
	if err != nil {
		return 0, err
	}
	copied, err := withAnonymousPages(f, ranges)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", smaps, err)
	}
	var released uint64
	for _, r := range ranges {
		if copied[r.start] {
			continue
		}
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise(%#x, %d, MADV_DONTNEED) of %s: %w", r.start, r.end-r.start, exe, errno)
		}
		released += uint64(r.end - r.start)
	}
	return released, nil
}

// withAnonymousPages reads an smaps file and returns the start addresses
// of those of ranges whose mapping holds anonymous pages (its
// "Anonymous:" line is not 0 kB). procfs reads only smaps_rollup, the
// sum over all mappings.
func withAnonymousPages(r io.Reader, ranges []startupMapping) (map[uintptr]bool, error) {
	wanted := map[uintptr]bool{}
	for _, m := range ranges {
		wanted[m.start] = true
	}
	copied := map[uintptr]bool{}
	var current uintptr
	inWanted := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		key, value, found := strings.Cut(line, ":")
		if !found || strings.Contains(key, " ") {
			// A mapping's header: "00400000-00e16000 r-xp 00000000 fd:01 1234 /usr/bin/nodeagent".
			addrs, _, _ := strings.Cut(line, " ")
			start, _, ok := strings.Cut(addrs, "-")
			if !ok {
				return nil, fmt.Errorf("unexpected line %q", line)
			}
			a, err := strconv.ParseUint(start, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("mapping %q: %w", line, err)
			}
			current, inWanted = uintptr(a), wanted[uintptr(a)]
			continue
		}
		if inWanted && key == "Anonymous" && strings.TrimSpace(value) != "0 kB" {
			copied[current] = true
		}
	}
	return copied, sc.Err()
}
