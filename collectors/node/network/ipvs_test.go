package network

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (good, label subsets, absent, malformed) are golden
// cases in testdata/ipvs.

func TestParseIPVSLabels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "all", in: "local_address,local_port,remote_address,remote_port,proto,local_mark", want: ipvsBackendLabels},
		{name: "flag order does not matter", in: "remote_port,local_port", want: []string{"local_port", "remote_port"}},
		{name: "empty items are ignored", in: ",proto,,", want: []string{"proto"}},
		{name: "none", in: "", want: nil},
		{name: "unknown", in: "proto,vip,zone", wantErr: `unknown IPVS backend labels "vip, zone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseIPVSLabels(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestIPVSUnknownLabelIsAStartupError(t *testing.T) {
	t.Parallel()
	_, err := collectortest.BuildFixture(t, "ipvs", "ipvs/good", "--collector.ipvs.backend-labels=proto,namespace")
	if err == nil || !strings.Contains(err.Error(), "--collector.ipvs.backend-labels") {
		t.Fatalf("want an error naming the flag, got %v", err)
	}
}

func TestIPVSBackendsMissingIsAnError(t *testing.T) {
	t.Parallel()
	// ip_vs_stats without ip_vs means a broken /proc, not a host without
	// IPVS: the scrape reports it.
	dir := collectortest.CopyTree(t, "ipvs/good")
	collectortest.RemoveFile(t, dir, "proc/net/ip_vs")
	c := collectortest.MustBuildFixture(t, "ipvs", dir)
	_, err := collectortest.Exposition(t, c)
	if err == nil || !strings.Contains(err.Error(), "proc/net/ip_vs") {
		t.Fatalf("want an error naming proc/net/ip_vs, got %v", err)
	}
}
