package main

import (
	"runtime/debug"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompleteVersion(t *testing.T) {
	t.Parallel()
	stamped := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "-trimpath", Value: "true"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "e7a7ae4bbca0f391bb05a7209cbe3652182478df"},
		{Key: "vcs.time", Value: "2026-12-04T16:09:51Z"},
		{Key: "vcs.modified", Value: "false"},
	}}
	dirty := &debug.BuildInfo{Settings: append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, stamped.Settings[:4]...)}
	for _, tc := range []struct {
		name string
		have buildVersion
		bi   *debug.BuildInfo
		want buildVersion
	}{
		{
			name: "plain build in a clean checkout",
			bi:   stamped,
			want: buildVersion{Version: "1.2.3", Revision: "e7a7ae4bbca0f391bb05a7209cbe3652182478df", BuildDate: "2026-12-04T16:09:51Z"},
		},
		{
			name: "plain build in a dirty checkout",
			bi:   dirty,
			want: buildVersion{Version: "1.2.3", Revision: "e7a7ae4bbca0f391bb05a7209cbe3652182478df-modified", BuildDate: "2026-12-04T16:09:51Z"},
		},
		{
			name: "no VCS stamp (go install from the module proxy, -buildvcs=false, a git worktree)",
			bi:   &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}}},
			want: buildVersion{Version: "1.2.3"},
		},
		{
			name: "no build info at all",
			want: buildVersion{Version: "1.2.3"},
		},
		{
			name: "-ldflags -X wins",
			have: buildVersion{Version: "9.9.9", Revision: "abc1234", BuildDate: "20261204-16:09:51"},
			bi:   dirty,
			want: buildVersion{Version: "9.9.9", Revision: "abc1234", BuildDate: "20261204-16:09:51"},
		},
		{
			name: "-X of the version only: the rest from the stamp",
			have: buildVersion{Version: "9.9.9"},
			bi:   stamped,
			want: buildVersion{Version: "9.9.9", Revision: "e7a7ae4bbca0f391bb05a7209cbe3652182478df", BuildDate: "2026-12-04T16:09:51Z"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := completeVersion(tc.have, "1.2.3", tc.bi)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
