//go:build scale

package benchmark

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// singleChanges is how many changes, one at a time, the latency figures
// rest on.
const singleChanges = 200

// scaleProjects is SCALE_N, 10,000 when unset.
func scaleProjects(b *testing.B) int {
	n := 10_000
	if s := os.Getenv("SCALE_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			b.Fatalf("SCALE_N=%q: want a positive number", s)
		}
	}
	return n
}

// scaleZone is the landing zone every project of the scale run is in: a
// quota, a limit range and one network policy.
func scaleZone() *meshv1.MeshLandingZone {
	return &meshv1.MeshLandingZone{
		ObjectMeta: metav1.ObjectMeta{Name: "scale"},
		Spec: meshv1.MeshLandingZoneSpec{
			ResourceQuota: &meshv1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("100")}},
			LimitRange: &meshv1.LimitRangeSpec{Limits: []meshv1.LimitRangeItem{{Type: corev1.LimitTypeContainer,
				Default: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}},
			NetworkPolicies: []meshv1.LandingZoneNetworkPolicy{{Name: "default-deny-ingress",
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}},
		},
	}
}

// BenchmarkScale is `make bench-scale`: N projects (SCALE_N, default
// 10,000), three roles each, in a landing zone with a quota, a limit range
// and a network policy, converged by the operator binary running under the
// meshfed-service token with default flags, against floors of the same
// writes made directly under the same identity on a fresh API server:
//
//   - convergence of all N, and its floor;
//   - p50/p99 of a single change reaching its RoleBinding, over 200 changes
//     made one at a time after convergence;
//   - one landing-zone edit reaching all N ResourceQuotas, and its floor;
//   - the operator's peak RSS (VmHWM) and peak heap in use, and a heap
//     profile at the end (the top of it is printed).
func BenchmarkScale(b *testing.B) {
	ctx := context.Background()
	n := scaleProjects(b)
	watchTimeout = 30 * time.Minute

	floor, zoneFloor := scaleFloor(b, ctx, n)

	env := startEnv(b, ctx)
	bin := buildBinary(b)
	kubeconfig := filepath.Join(b.TempDir(), "kubeconfig")
	data, err := env.fw.TokenKubeconfig(ctx, env.sa, 24*3600)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		b.Fatal(err)
	}
	// In the chart's container the operator sets GOMEMLIMIT to a share of
	// the memory limit (automemlimit); outside a container it cannot see
	// the limit, so set it here as it would be.
	memoryLimit := chartReplicatorMemoryLimit(b)
	b.Setenv("GOMEMLIMIT", strconv.FormatInt(int64(float64(memoryLimit)*operator.GoMemLimitRatio), 10))
	metricsAddr, pprofAddr := freeAddr(b), freeAddr(b)
	logFile := filepath.Join(b.TempDir(), "operator.log")
	proc, err := framework.StartProcess(bin, logFile, "--kubeconfig="+kubeconfig, "--components=replicator",
		"--metrics-secure=false", "--metrics-bind-address="+metricsAddr, "--pprof-bind-address="+pprofAddr,
		"--health-probe-bind-address=0", "--zap-log-level=error")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := proc.Stop(); err != nil {
			b.Errorf("the operator exited with %v on SIGTERM", err)
		}
	}()
	heap := sampleHeap(ctx, "http://"+metricsAddr+"/metrics")
	defer heap.stop()

	zone := scaleZone()
	if err := env.admin.Create(ctx, zone); err != nil {
		b.Fatal(err)
	}
	var converge, zoneEdit time.Duration
	var latencies []time.Duration
	for b.Loop() {
		wait := watchReady(b, ctx, env.admin, "s", n)
		start := time.Now()
		parallel(b, n, func(i int) error {
			p := meshProject(fmt.Sprintf("s%d", i))
			p.Spec.LandingZone = zone.Name
			return env.admin.Create(ctx, p)
		})
		wait()
		converge = time.Since(start)

		latencies = singleChangeLatencies(b, ctx, env.admin, n)

		waitQuotas := watchQuotas(b, ctx, env.admin, zone.Name, "s", "250", n)
		if err := env.admin.Get(ctx, client.ObjectKeyFromObject(zone), zone); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		zone.Spec.ResourceQuota.Hard[corev1.ResourcePods] = resource.MustParse("250")
		if err := env.admin.Update(ctx, zone); err != nil {
			b.Fatal(err)
		}
		waitQuotas()
		zoneEdit = time.Since(start)
	}
	rss, rssFile := peakRSS(b, proc.Pid())
	peakHeap := heap.stop()
	profile := heapProfileTop(b, ctx, "http://"+pprofAddr+"/debug/pprof/heap")

	slices.Sort(latencies)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	b.ReportMetric(float64(n), "projects")
	b.ReportMetric(converge.Seconds(), "converge-s")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(converge.Seconds()/floor.Seconds(), "converge/floor")
	b.ReportMetric(float64(p50.Microseconds())/1000, "change-p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "change-p99-ms")
	b.ReportMetric(zoneEdit.Seconds(), "zone-edit-s")
	b.ReportMetric(zoneFloor.Seconds(), "zone-floor-s")
	b.ReportMetric(zoneEdit.Seconds()/zoneFloor.Seconds(), "zone-edit/floor")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(100*(1-float64(rss)/float64(memoryLimit)), "limit-headroom-%")
	b.ReportMetric(peakHeap/(1<<20), "peak-heap-MiB")
	fmt.Printf("\nScale run, %d projects (3 roles each, landing zone with quota, limit range, network policy):\n"+
		"  convergence      %7.1f s   floor %7.1f s   ratio %.2f   (goal <= 1.5)\n"+
		"  single change    p50 %5.1f ms   p99 %5.1f ms over %d changes   (goal p99 < 100 ms)\n"+
		"  zone edit        %7.1f s   floor %7.1f s   ratio %.2f   (goal <= 1.5)\n"+
		"  operator memory  peak RSS %.0f MiB   peak heap in use %.0f MiB   (goal RSS <= 200 MiB); "+
		"mapped from the binary at the end %.0f MiB\n"+
		"                   chart limit %.0f MiB (GOMEMLIMIT %.0f %% of it): headroom %.0f %%   (goal >= 25 %%)\n"+
		"Top of the heap profile at the end (inuse_space):\n%s\n",
		n, converge.Seconds(), floor.Seconds(), converge.Seconds()/floor.Seconds(),
		float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, len(latencies),
		zoneEdit.Seconds(), zoneFloor.Seconds(), zoneEdit.Seconds()/zoneFloor.Seconds(),
		float64(rss)/(1<<20), peakHeap/(1<<20), float64(rssFile)/(1<<20),
		float64(memoryLimit)/(1<<20), 100*operator.GoMemLimitRatio, 100*(1-float64(rss)/float64(memoryLimit)), profile)
}

// scaleFloor makes, on an API server of its own, the writes that
// converging n zoned projects takes (the user's create; the finalizer, the
// namespace, three RoleBindings, the quota, limit range and network policy,
// and the status, as the operator's ServiceAccount with its client
// settings and as many workers), and then one zone edit's writes: n quota
// updates.
func scaleFloor(b *testing.B, ctx context.Context, n int) (converge, zoneEdit time.Duration) {
	env := startEnv(b, ctx)
	defer func() { _ = env.fw.Stop() }()
	zone := scaleZone()
	quotas := make([]*corev1.ResourceQuota, n)
	start := time.Now()
	parallel(b, n, func(i int) error {
		customer := fmt.Sprintf("f%d", i)
		if err := convergeByHand(ctx, env.admin, env.direct, customer); err != nil {
			return err
		}
		ns := customer + "-bench"
		labels := map[string]string{meshv1.LabelManagedBy: meshv1.ManagedByValue}
		owned := map[string]string{meshv1.AnnotationMeshProject: ns}
		meta := func(name string) metav1.ObjectMeta {
			return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: owned}
		}
		quotas[i] = &corev1.ResourceQuota{ObjectMeta: meta(replicator.ResourceQuotaName), Spec: zone.Spec.ResourceQuota.CoreV1()}
		if err := env.direct.Create(ctx, quotas[i]); err != nil {
			return err
		}
		if err := env.direct.Create(ctx, &corev1.LimitRange{ObjectMeta: meta(replicator.LimitRangeName),
			Spec: zone.Spec.LimitRange.CoreV1()}); err != nil {
			return err
		}
		return env.direct.Create(ctx, &networkingv1.NetworkPolicy{ObjectMeta: meta("meshproject-default-deny-ingress"),
			Spec: zone.Spec.NetworkPolicies[0].Spec})
	})
	converge = time.Since(start)
	start = time.Now()
	parallel(b, n, func(i int) error {
		quotas[i].Spec.Hard[corev1.ResourcePods] = resource.MustParse("250")
		return env.direct.Update(ctx, quotas[i])
	})
	return converge, time.Since(start)
}

// singleChangeLatencies adds a user to the admin role of one project at a
// time and measures until its RoleBinding has the user, seen by a watch.
func singleChangeLatencies(b *testing.B, ctx context.Context, c client.WithWatch, n int) []time.Duration {
	w, err := c.Watch(ctx, &rbacv1.RoleBindingList{}, client.MatchingLabels{meshv1.LabelManagedBy: meshv1.ManagedByValue})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	latencies := make([]time.Duration, 0, singleChanges)
	for i := range singleChanges {
		target := fmt.Sprintf("s%d", (i*7919)%n)
		user := fmt.Sprintf("change-%d", i)
		var p meshv1.MeshProject
		if err := c.Get(ctx, client.ObjectKey{Name: target + "-bench"}, &p); err != nil {
			b.Fatal(err)
		}
		p.Spec.RoleBindings[0].Users = append(p.Spec.RoleBindings[0].Users, meshv1.SubjectName(user))
		start := time.Now()
		if err := c.Update(ctx, &p); err != nil {
			b.Fatal(err)
		}
		if !waitForSubject(w, p.NamespaceName(), "mesh:"+user) {
			b.Fatalf("change %d never reached RoleBinding %s/%s", i, p.NamespaceName(), replicator.RoleBindingName("admin"))
		}
		latencies = append(latencies, time.Since(start))
	}
	return latencies
}

func waitForSubject(w watch.Interface, namespace, subject string) bool {
	timeout := time.After(time.Minute)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false
			}
			rb, ok := ev.Object.(*rbacv1.RoleBinding)
			if !ok || rb.Namespace != namespace || rb.Name != replicator.RoleBindingName("admin") {
				continue
			}
			for _, s := range rb.Subjects {
				if s.Name == subject {
					return true
				}
			}
		case <-timeout:
			return false
		}
	}
}

// heapSampler scrapes go_memstats_heap_inuse_bytes every half second.
type heapSampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	peak   float64
}

func sampleHeap(ctx context.Context, url string) *heapSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &heapSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			if v, ok := scrapeGauge(ctx, url, "go_memstats_heap_inuse_bytes"); ok && v > s.peak {
				s.peak = v
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return s
}

// stop ends the sampling (once) and returns the peak.
func (s *heapSampler) stop() float64 {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
	return s.peak
}

// scrapeGauge reads the gauge name from the metrics at url; false when it
// cannot (the operator may not serve metrics yet).
func scrapeGauge(ctx context.Context, url, name string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false
	}
	// Only read: an error closing the body loses nothing.
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// peakRSS is the process's peak resident set (VmHWM) and the part of its
// resident set now that is mapped from files (RssFile, mostly the binary),
// in bytes.
func peakRSS(b *testing.B, pid int) (peak, file int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kB := func(field string) int64 {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, field+":"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					b.Fatal(err)
				}
				return kb << 10
			}
		}
		b.Fatalf("no %s in /proc/<pid>/status", field)
		return 0
	}
	return kB("VmHWM"), kB("RssFile")
}

// heapProfileTop fetches a heap profile and returns `go tool pprof -top`'s
// first lines. SCALE_HEAP_PROFILE=<file> keeps the whole profile there.
func heapProfileTop(b *testing.B, ctx context.Context, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	// Only read: an error closing the body loses nothing.
	defer func() { _ = resp.Body.Close() }()
	file := os.Getenv("SCALE_HEAP_PROFILE")
	if file == "" {
		file = filepath.Join(b.TempDir(), "heap.pprof")
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", file).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(pprof failed: %v)", err)
	}
	lines := strings.Split(string(out), "\n")
	return strings.Join(lines[:min(len(lines), 25)], "\n")
}

// chartReplicatorMemoryLimit is replicator.resources.limits.memory of the
// chart's values, in bytes.
func chartReplicatorMemoryLimit(b *testing.B) int64 {
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), framework.ChartDir, "values.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	var values struct {
		Replicator struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"replicator"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		b.Fatal(err)
	}
	return values.Replicator.Resources.Limits.Memory().Value()
}

// buildBinary builds the operator as `make build` does.
func buildBinary(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "meshstack-operator")
	build := exec.CommandContext(b.Context(), "go", "build", "-trimpath", "-o", bin, "./cmd")
	build.Dir = framework.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building the operator: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(b *testing.B) string {
	var lc net.ListenConfig
	l, err := lc.Listen(b.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	return addr
}
