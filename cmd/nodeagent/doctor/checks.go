package doctor

import (
	"context"
	"time"
)

// allChecks is every check of a plain run, in the order reports list
// them: bottom up, the layers as docs/troubleshooting.md orders them.
func allChecks() []check {
	cs := []check{
		{"host.procfs", LayerHost, checkProcFS},
		{"host.sysfs", LayerHost, checkSysFS},
		{"host.rootfs", LayerHost, checkRootFS},
		{"host.network", LayerHost, checkNetwork},
		{"host.cgroup", LayerHost, checkCgroup},
		{"host.psi", LayerHost, checkPSI},
		{"containers.cgroups", LayerContainers, checkContainerCgroups},
		{"containers.pods", LayerContainers, checkContainerPods},
		{"kubelet.reachable", LayerKubelet, checkKubeletReachable},
		{"kubelet.tls", LayerKubelet, checkKubeletTLS},
		{"kubelet.auth", LayerKubelet, checkKubeletAuth},
	}
	for _, s := range kubeletSubresources {
		cs = append(cs, check{"kubelet.rbac." + s.sub, LayerKubelet, checkKubeletRBAC(s.sub, s.path)})
	}
	return append(cs,
		check{"kubelet.readonly-port", LayerKubelet, checkReadOnlyPort},
		check{"kubelet.anonymous-auth", LayerKubelet, checkAnonymousAuth},
		check{"api.access", LayerAPI, checkAPIAccess},
		check{"metrics-server.apiservice", LayerMetricsServer, checkMetricsServerAPIService},
		check{"metrics-server.node", LayerMetricsServer, checkMetricsServerNode},
		check{"kube-state-metrics.present", LayerKubeStateMetrics, checkKubeStateMetrics},
		check{"metrics-adapters.custom", LayerMetricsAdapters, checkAdapter(customAPIService, "custom")},
		check{"metrics-adapters.external", LayerMetricsAdapters, checkAdapter(externalAPIService, "external")},
		check{"prometheus.scraped", LayerPrometheus, checkAgentScraped},
		check{"prometheus.targets", LayerPrometheus, checkPromTargets},
		check{"prometheus.jobs", LayerPrometheus, checkPromJobs},
	)
}

// newDoctor wires the shared facts; none is fetched before a check asks.
func newDoctor(ctx context.Context, o Options, checkTimeout time.Duration) *doctor {
	d := &doctor{opts: o, checkTimeout: checkTimeout}
	t := checkTimeout
	d.kubelet = newLazy(ctx, t, d.newKubeletClient)
	d.kubeletPods = newLazy(ctx, t, func(ctx context.Context) (podsResult, error) {
		kc, err := d.kubelet.get(ctx)
		if err != nil {
			return podsResult{}, err
		}
		snap, err := kc.Pods(ctx)
		return podsResult{snap: snap}, err
	})
	d.kubeletMetrics = newLazy(ctx, t, func(ctx context.Context) (struct{}, error) {
		kc, err := d.kubelet.get(ctx)
		if err != nil {
			return struct{}{}, err
		}
		_, err = kc.Metrics(ctx, "/metrics")
		return struct{}{}, err
	})
	d.cgroups = newLazy(ctx, t, d.readCgroupLayout)
	d.walk = newLazy(ctx, t, d.walkCgroups)
	d.api = newLazy(ctx, t, d.connect)
	d.apiVersion = newLazy(ctx, t, func(ctx context.Context) (string, error) {
		c, err := d.api.get(ctx)
		if err != nil {
			return "", err
		}
		return c.version(ctx)
	})
	d.apiIdentity = newLazy(ctx, t, func(ctx context.Context) (string, error) {
		c, err := d.api.get(ctx)
		if err != nil {
			return "", err
		}
		return c.whoami(ctx)
	})
	d.kubeletID = newLazy(ctx, t, d.connectAsKubeletCredential)
	d.kubeletUser = newLazy(ctx, t, func(ctx context.Context) (string, error) {
		c, err := d.kubeletID.get(ctx)
		if err != nil {
			return "", err
		}
		return c.whoami(ctx)
	})
	d.apiServices = map[string]*lazy[*apiService]{}
	for _, name := range []string{metricsAPIService, customAPIService, externalAPIService} {
		d.apiServices[name] = newLazy(ctx, t, d.readAPIService(name))
	}
	d.ssar = map[string]*lazy[ssarAnswer]{}
	for _, s := range kubeletSubresources {
		d.ssar[s.sub] = newLazy(ctx, t, d.askSSAR(s.sub))
	}
	d.agent = newLazy(ctx, t, d.scrapeAgent)
	d.promUp = newLazy(ctx, t, d.queryUp)
	return d
}
