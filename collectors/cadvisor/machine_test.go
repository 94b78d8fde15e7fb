package cadvisor

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// cpuinfo is an x86 /proc/cpuinfo of n processors, perSocket of them to a
// socket and threads to a core, each with the lines of extra (ending in a
// newline) after its IDs.
func cpuinfo(n, perSocket, threads int, extra string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "processor\t: %d\nphysical id\t: %d\ncore id\t\t: %d\n%s\n", i, i/perSocket, (i%perSocket)/threads, extra)
	}
	return b.String()
}

// testCPU is what machine tests give each processor besides its IDs.
const testCPU = "vendor_id\t: GenuineIntel\nmodel name\t: Test CPU\nflags\t\t: fpu vme de pse tsc msr pae\n"

// machineCPUs is what the machine collector serves as cores, physical
// cores and sockets, "" for a family it leaves out.
func machineCPUs(t *testing.T, c *machineCollector) string {
	t.Helper()
	out, err := collectortest.Exposition(t, c)
	mfs := collectortest.Parse(t, out)
	var got string
	for i, name := range []string{"machine_cpu_cores", "machine_cpu_physical_cores", "machine_cpu_sockets"} {
		if i > 0 {
			got += "/"
		}
		if mf, ok := mfs[name]; ok {
			got += fmt.Sprint(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	if err != nil {
		got += " error: " + err.Error()
	}
	return got
}

// TestMachineTopologyKept: cpuinfo is read again only when the online
// CPUs change, and every scrape where the online list cannot be read.
func TestMachineTopologyKept(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	collectortest.WriteFiles(t, root, map[string]string{
		"proc/cpuinfo":                  cpuinfo(4, 4, 2, testCPU),
		"proc/meminfo":                  "MemTotal:       8024304 kB\nSwapTotal:             0 kB\n",
		"sys/devices/system/cpu/online": "0-3\n",
	})
	c := newMachineCollector(collectortest.TempEnv(t, root))
	for _, step := range []struct {
		name  string
		files map[string]string
		rm    string
		want  string
	}{
		{"first scrape", nil, "", "4/2/1"},
		{"cpuinfo rewritten, same CPUs online: kept", map[string]string{"proc/cpuinfo": cpuinfo(6, 6, 2, testCPU)}, "", "4/2/1"},
		{"two CPUs come online", map[string]string{"proc/cpuinfo": cpuinfo(8, 4, 2, testCPU), "sys/devices/system/cpu/online": "0-7\n"}, "", "8/4/2"},
		{"one goes offline", map[string]string{"proc/cpuinfo": cpuinfo(7, 4, 2, testCPU), "sys/devices/system/cpu/online": "0-6\n"}, "", "7/4/2"},
		{"no online list: read every scrape", map[string]string{"proc/cpuinfo": cpuinfo(2, 2, 2, testCPU)}, "sys/devices/system/cpu/online", "2/1/1"},
		{"and again", map[string]string{"proc/cpuinfo": cpuinfo(4, 2, 2, testCPU)}, "", "4/2/2"},
		{"online list back", map[string]string{"sys/devices/system/cpu/online": "0-3\n"}, "", "4/2/2"},
		{"cpuinfo gone, same CPUs online: not read", nil, "proc/cpuinfo", "4/2/2"},
		{"cpuinfo gone, a CPU offline: unreadable", map[string]string{"sys/devices/system/cpu/online": "0-2\n"}, "", "// error: reading " + root + "/proc/cpuinfo"},
		{"cpuinfo back, same CPUs online: read again", map[string]string{"proc/cpuinfo": cpuinfo(4, 4, 2, testCPU)}, "", "4/2/1"},
	} {
		collectortest.WriteFiles(t, root, step.files)
		if step.rm != "" {
			collectortest.RemoveFile(t, root, step.rm)
		}
		if got := machineCPUs(t, c); !strings.HasPrefix(got, step.want) {
			t.Errorf("%s: cores/physical/sockets %s, want %s", step.name, got, step.want)
		}
	}
}

// BenchmarkMachineTopology is the machine collector's scrape on a 96-CPU
// host (two sockets, two threads per core, an EPYC's 95 flags per
// processor: 120 KB of cpuinfo), with the online list that keeps the
// counts, and without it, when cpuinfo is read every scrape as it was
// before the counts were kept.
func BenchmarkMachineTopology(b *testing.B) {
	info := cpuinfo(96, 48, 2, "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\nstepping\t: 1\nmicrocode\t: 0xffffffff\ncpu MHz\t\t: 2100.000\ncache size\t: 512 KB\nsiblings\t: 48\ncpu cores\t: 24\napicid\t\t: 0\ninitial apicid\t: 0\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t: "+epycFlags+"\nbugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass srso\nbogomips\t: 4200.00\nTLB size\t: 2560 4K pages\nclflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 48 bits physical, 48 bits virtual\npower management:\n")
	for _, bc := range []struct {
		name   string
		online bool
	}{{"online-list", true}, {"no-online-list", false}} {
		b.Run(bc.name, func(b *testing.B) {
			root := b.TempDir()
			files := map[string]string{"proc/cpuinfo": info, "proc/meminfo": "MemTotal:       8024304 kB\nSwapTotal:             0 kB\n"}
			if bc.online {
				files["sys/devices/system/cpu/online"] = "0-95\n"
			}
			collectortest.WriteFiles(b, root, files)
			c := newMachineCollector(collectortest.TempEnv(b, root))
			collectortest.BenchUpdate(b, c)
			b.ReportMetric(float64(len(info))/1000, "kB-cpuinfo")
		})
	}
}

// epycFlags are an AMD EPYC's cpuinfo flags, as a KVM guest shows them.
const epycFlags = "fpu vme de pse tsc msr pae mce cx8 apic sep pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext lm constant_tsc rep_good nopl xtopology tsc_reliable nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cr8_legacy misalignsse 3dnowprefetch topoext pti        vmmcall bmi1 avx2 bmi2 erms avx512f avx512dq adx avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 avx_vnni avx512_bf16 clzero xsaveerptr arat avx512vbmi avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq movdiri movdir64b fsrm avx512_vp2intersect"
