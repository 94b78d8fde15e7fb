package cgroup

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	cid  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	uid  = "081d040e-c94b-41ea-8278-eb12903ddd99"
	uidU = "081d040e_c94b_41ea_8278_eb12903ddd99"
	suid = "07bd11a0a13dfe5450a17a39eb8e32d2" // a static pod's config hash
)

func TestClassify(t *testing.T) {
	t.Parallel()
	root := Entry{Path: "/", Kind: KindRoot}
	kp := Entry{Path: "/kubepods.slice", Kind: KindKubepods}
	kpfs := Entry{Path: "/kubepods", Kind: KindKubepods}
	qos := Entry{Path: "/kubepods.slice/kubepods-burstable.slice", Kind: KindQoS, QoS: "burstable"}
	pod := Entry{Path: "/p", Kind: KindPod, QoS: "burstable", PodUID: uid}
	host := Entry{Path: "/system.slice", Kind: KindHost}
	for _, tc := range []struct {
		name   string
		parent Entry
		child  string
		want   Entry
		act    action
	}{
		{"systemd kubepods", root, "kubepods.slice", Entry{Path: "/kubepods.slice", Kind: KindKubepods}, serveAndDescend},
		{"cgroupfs kubepods", root, "kubepods", Entry{Path: "/kubepods", Kind: KindKubepods}, serveAndDescend},
		{"custom cgroup root", host, "kubelet-kubepods.slice", Entry{Path: "/system.slice/kubelet-kubepods.slice", Kind: KindKubepods}, serveAndDescend},
		{"service", root, "system.slice", Entry{Path: "/system.slice", Kind: KindHost}, serveAndDescend},
		{"unit", host, "kubelet.service", Entry{Path: "/system.slice/kubelet.service", Kind: KindHost}, serveAndDescend},
		{"init.scope", root, "init.scope", Entry{Path: "/init.scope", Kind: KindHost}, serveAndDescend},
		{"plain docker", host, "docker-" + cid + ".scope", Entry{Path: "/system.slice/docker-" + cid + ".scope", Kind: KindContainer, ContainerID: cid, Runtime: RuntimeDocker}, serveOnly},
		{"systemd qos", kp, "kubepods-besteffort.slice", Entry{Path: "/kubepods.slice/kubepods-besteffort.slice", Kind: KindQoS, QoS: "besteffort"}, serveAndDescend},
		{"cgroupfs qos", kpfs, "burstable", Entry{Path: "/kubepods/burstable", Kind: KindQoS, QoS: "burstable"}, serveAndDescend},
		{"systemd guaranteed pod", kp, "kubepods-pod" + uidU + ".slice", Entry{Path: "/kubepods.slice/kubepods-pod" + uidU + ".slice", Kind: KindPod, QoS: "guaranteed", PodUID: uid}, serveAndDescend},
		{"cgroupfs guaranteed pod", kpfs, "pod" + uid, Entry{Path: "/kubepods/pod" + uid, Kind: KindPod, QoS: "guaranteed", PodUID: uid}, serveAndDescend},
		{"systemd burstable pod", qos, "kubepods-burstable-pod" + uidU + ".slice", Entry{Path: qos.Path + "/kubepods-burstable-pod" + uidU + ".slice", Kind: KindPod, QoS: "burstable", PodUID: uid}, serveAndDescend},
		{"static pod", qos, "kubepods-burstable-pod" + suid + ".slice", Entry{Path: qos.Path + "/kubepods-burstable-pod" + suid + ".slice", Kind: KindPod, QoS: "burstable", PodUID: suid}, serveAndDescend},
		{"containerd scope", pod, "cri-containerd-" + cid + ".scope", Entry{Path: "/p/cri-containerd-" + cid + ".scope", Kind: KindContainer, QoS: "burstable", PodUID: uid, ContainerID: cid, Runtime: RuntimeContainerd}, serveOnly},
		{"crio scope", pod, "crio-" + cid + ".scope", Entry{Path: "/p/crio-" + cid + ".scope", Kind: KindContainer, QoS: "burstable", PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO}, serveOnly},
		{"docker scope", pod, "docker-" + cid + ".scope", Entry{Path: "/p/docker-" + cid + ".scope", Kind: KindContainer, QoS: "burstable", PodUID: uid, ContainerID: cid, Runtime: RuntimeDocker}, serveOnly},
		{"cgroupfs leaf", pod, cid, Entry{Path: "/p/" + cid, Kind: KindContainer, QoS: "burstable", PodUID: uid, ContainerID: cid}, serveOnly},
		{"cgroupfs crio leaf", pod, "crio-" + cid, Entry{Path: "/p/crio-" + cid, Kind: KindContainer, QoS: "burstable", PodUID: uid, ContainerID: cid, Runtime: RuntimeCRIO}, serveOnly},
		{"conmon scope", pod, "crio-conmon-" + cid + ".scope", Entry{}, skip},
		{"cgroupfs conmon", pod, "crio-conmon-" + cid, Entry{}, skip},
		{"short id", pod, "cri-containerd-abc.scope", Entry{Path: "/p/cri-containerd-abc.scope", Kind: KindOther, QoS: "burstable", PodUID: uid}, serveAndDescend},
		{"upper-case id", pod, strings.ToUpper(cid), Entry{Path: "/p/" + strings.ToUpper(cid), Kind: KindOther, QoS: "burstable", PodUID: uid}, serveAndDescend},
		{"stray dir in kubepods", kp, "misc", Entry{Path: "/kubepods.slice/misc", Kind: KindOther}, serveAndDescend},
		{"pod with bad uid", qos, "kubepods-burstable-podxyz.slice", Entry{Path: qos.Path + "/kubepods-burstable-podxyz.slice", Kind: KindOther, QoS: "burstable"}, serveAndDescend},
		{"pod slice of another tree", qos, "foo-pod" + uidU + ".slice", Entry{Path: qos.Path + "/foo-pod" + uidU + ".slice", Kind: KindOther, QoS: "burstable"}, serveAndDescend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, act := classify(&tc.parent, tc.child)
			if act != tc.act {
				t.Fatalf("action %d, want %d", act, tc.act)
			}
			if act == skip {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{"kubepods.slice", "kubepods-burstable-pod" + uidU + ".slice", "pod" + uid, cid, "crio-conmon-" + cid + ".scope", "cri-containerd-" + cid + ".scope", "-pod.slice", "pod", ".slice"} {
		for k := KindRoot; k <= KindOther; k++ {
			f.Add(uint8(k), s)
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, name string) {
		parent := Entry{Path: "/x", Kind: Kind(kind % 7)}
		e, act := classify(&parent, name)
		if act == skip {
			return
		}
		if e.Path != "/x/"+name {
			t.Fatalf("path %q", e.Path)
		}
		if e.Kind == KindContainer && !isContainerID(e.ContainerID) {
			t.Fatalf("container without an ID: %+v", e)
		}
		if e.Kind == KindPod && e.PodUID == "" {
			t.Fatalf("pod without a UID: %+v", e)
		}
		if e.Kind == KindContainer && act != serveOnly {
			t.Fatalf("walk would descend into container %q", name)
		}
	})
}
