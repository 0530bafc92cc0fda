// Package cluster tests the operator as users run it: the image `make
// image` builds, installed with the chart into a real single-node cluster
// (hack/cluster/node.sh) whose kubelet runs both Deployments as Pods.
//
// The tests need that cluster and run only through `make test-cluster`
// (hack/cluster/test.sh), which starts it, imports the image and runs this
// package inside the cluster's network namespace with
// MESHSTACK_CLUSTER_KUBECONFIG set; without it they skip, so `go test ./...`
// is unaffected.
package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	namespace = "meshcloud"
	// The pause image node.sh imports: a container that runs and reserves
	// what its requests say, for metering to count.
	pauseImage = "meshstack.local/pause:1"
	// Projects of the memory burst.
	burstProjects = 1000
)

type env struct {
	kubeconfig string
	c          client.Client
	cs         *kubernetes.Clientset
}

var (
	setupOnce sync.Once
	shared    *env
	setupErr  error
)

// cluster installs the chart once for all tests of the package.
func cluster(t *testing.T) *env {
	t.Helper()
	kubeconfig := os.Getenv("MESHSTACK_CLUSTER_KUBECONFIG")
	if kubeconfig == "" {
		// make test (go test ./...) runs this package without a cluster; the
		// cluster run is make test-cluster, whose script sets
		// MESHSTACK_CLUSTER_REQUIRED so that a lost kubeconfig fails there.
		if os.Getenv("MESHSTACK_CLUSTER_REQUIRED") != "" {
			t.Fatal("MESHSTACK_CLUSTER_REQUIRED is set but MESHSTACK_CLUSTER_KUBECONFIG is empty")
		}
		t.Skip("needs a real cluster: run make test-cluster")
	}
	setupOnce.Do(func() { shared, setupErr = install(kubeconfig) })
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	return shared
}

func install(kubeconfig string) (*env, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 200, 400
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := meshv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	image := os.Getenv("MESHSTACK_CLUSTER_IMAGE")
	repo, tag, _ := strings.Cut(image, ":")
	dir, err := os.MkdirTemp("", "meshstack-cluster-test-")
	if err != nil {
		return nil, err
	}
	// As a user installs it, with the locally imported image (no registry:
	// never pull), two replicator replicas for the handover, and short
	// metering windows so that records appear within the test. Metering's
	// persistence stays off (no storage provisioner): records go to stdout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
		"--namespace", namespace, "--create-namespace", "--kubeconfig", kubeconfig, "--wait", "--timeout", "4m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "replicator.replicas=2",
		"--set", "metering.interval=2s", "--set", "metering.window=10s",
	); err != nil {
		return nil, err
	}
	fmt.Printf("helm install --wait took %s\n", time.Since(start).Round(time.Second))
	return &env{kubeconfig: kubeconfig, c: c, cs: cs}, nil
}

func newG(t *testing.T) Gomega {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(2 * time.Minute)
	g.SetDefaultEventuallyPollingInterval(500 * time.Millisecond)
	return g
}

// componentPods are the Running pods of a component.
func componentPods(ctx context.Context, g Gomega, e *env, component string) []corev1.Pod {
	var pods corev1.PodList
	g.Expect(e.c.List(ctx, &pods, client.InNamespace(namespace),
		client.MatchingLabels{"app.kubernetes.io/component": component})).To(Succeed())
	var running []corev1.Pod
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running = append(running, p)
		}
	}
	return running
}

// TestDeploymentsReady: both Deployments are available with the chart's
// probes passing, as the image's user, and nothing restarted.
func TestDeploymentsReady(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	for name, replicas := range map[string]int32{"replicator": 2, "metering": 1} {
		g.Eventually(func(g Gomega) {
			var d appsv1.Deployment
			g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &d)).To(Succeed())
			g.Expect(d.Status.ReadyReplicas).To(Equal(replicas), "Deployment %s ready replicas", name)
			g.Expect(d.Status.UpdatedReplicas).To(Equal(replicas))
		}).Should(Succeed())
		pods := componentPods(ctx, g, e, name)
		g.Expect(pods).To(HaveLen(int(replicas)))
		for _, p := range pods {
			g.Expect(p.Spec.Containers[0].ReadinessProbe).NotTo(BeNil(), "the chart's readiness probe")
			g.Expect(p.Spec.Containers[0].LivenessProbe).NotTo(BeNil(), "the chart's liveness probe")
			for _, s := range p.Status.ContainerStatuses {
				g.Expect(s.Ready).To(BeTrue(), "%s ready", p.Name)
				g.Expect(s.RestartCount).To(BeZero(), "%s never restarted (OOM, failed probe, crash)", p.Name)
			}
		}
	}
}

// TestProjectConverges: the sample projects get their namespaces and
// RoleBindings from the replicator Pod, and the landing zone its quota.
func TestProjectConverges(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	applySamples(ctx, g, e)
	for _, name := range []string{"acme-webshop", "acme-analytics"} {
		g.Eventually(func(g Gomega) {
			var p meshv1.MeshProject
			g.Expect(e.c.Get(ctx, client.ObjectKey{Name: name}, &p)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, "Ready")).To(BeTrue(), "conditions %v", p.Status.Conditions)
			g.Expect(p.Status.Namespace).To(Equal(name))
		}).Should(Succeed(), "MeshProject %s becomes Ready", name)
	}
	g.Expect(bindingSubjects(ctx, g, e, "acme-webshop", "admin")).To(ConsistOf(
		rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "mesh:alice"}))
	g.Expect(bindingSubjects(ctx, g, e, "acme-webshop", "edit")).To(ConsistOf(
		rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "acme-webshop-developers"}))
	g.Expect(bindingSubjects(ctx, g, e, "acme-analytics", "admin")).To(ConsistOf(
		rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "mesh:carol"}))

	// The zone's quota, with the project's requests.cpu raised within
	// maxQuota.
	g.Eventually(func(g Gomega) {
		var q corev1.ResourceQuota
		g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: "acme-analytics", Name: "meshproject-quota"}, &q)).To(Succeed())
		g.Expect(q.Spec.Hard.Pods().String()).To(Equal("50"))
		g.Expect(q.Spec.Hard.Name("requests.cpu", resource.DecimalSI).String()).To(Equal("8"))
		// The cluster's resource quota controller computed it (the chart's
		// policy lets it write the status), so the API server enforces it.
		g.Expect(q.Status.Hard.Pods().String()).To(Equal("50"))
	}).Should(Succeed())
	// A pod asking for more CPU than the quota leaves is refused.
	greedy := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "acme-analytics", Name: "greedy"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: pauseImage, ImagePullPolicy: corev1.PullNever,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("9"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("9"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			}}}},
	}
	g.Expect(e.c.Create(ctx, greedy)).To(MatchError(ContainSubstring("exceeded quota")))
}

// TestAdmissionRefusesTenantEdit: the chart's admission policies are in
// force in the cluster: alice, admin of acme-webshop (RBAC lets her edit
// RoleBindings there), may not edit or delete the operator's RoleBinding.
func TestAdmissionRefusesTenantEdit(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	applySamples(ctx, g, e)
	key := client.ObjectKey{Namespace: "acme-webshop", Name: replicator.RoleBindingName("admin")}
	managed := &rbacv1.RoleBinding{}
	g.Eventually(func() error { return e.c.Get(ctx, key, managed) }).Should(Succeed())

	cfg, err := clientcmd.BuildConfigFromFlags("", e.kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "mesh:alice"}
	alice, err := client.New(cfg, client.Options{Scheme: e.c.Scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	forbidden := ContainSubstring("managed by meshstack-operator from MeshProject acme-webshop; change the MeshProject instead")
	edited := managed.DeepCopy()
	edited.Subjects = append(edited.Subjects, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:friend"})
	g.Expect(alice.Update(ctx, edited)).To(MatchError(forbidden))
	g.Expect(alice.Delete(ctx, managed.DeepCopy())).To(MatchError(forbidden))
	// RBAC alone would have let her: the refusal is the policy's.
	probe := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "acme-webshop", Name: "alices-own"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "mesh:friend"}},
	}
	g.Expect(alice.Create(ctx, probe)).To(Succeed())
	g.Expect(alice.Delete(ctx, probe)).To(Succeed())
}

// applySamples creates config/samples (the landing zone standard and two
// projects) unless they exist.
func applySamples(ctx context.Context, g Gomega, e *env) {
	files, err := filepath.Glob(filepath.Join(framework.RepoRoot(), "config", "samples", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(files).NotTo(BeEmpty())
	for _, f := range files {
		objs, err := framework.ReadObjects(f)
		g.Expect(err).NotTo(HaveOccurred())
		for _, o := range objs {
			g.Expect(client.IgnoreAlreadyExists(e.c.Create(ctx, o))).To(Succeed())
		}
	}
}

// bindingSubjects are the subjects of the RoleBindings in ns that refer to
// the ClusterRole role.
func bindingSubjects(ctx context.Context, g Gomega, e *env, ns, role string) []rbacv1.Subject {
	var list rbacv1.RoleBindingList
	g.Expect(e.c.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	var subjects []rbacv1.Subject
	for _, b := range list.Items {
		if b.RoleRef.Kind == "ClusterRole" && b.RoleRef.Name == role {
			subjects = append(subjects, b.Subjects...)
		}
	}
	return subjects
}

// usageLine is the part of a usage record the test checks; its own type so
// that the test reads the records as a consumer of the JSON does.
type usageLine struct {
	ID                       string    `json:"id"`
	Namespace                string    `json:"namespace"`
	WindowStart              time.Time `json:"windowStart"`
	WindowEnd                time.Time `json:"windowEnd"`
	PodSeconds               float64   `json:"podSeconds"`
	CPURequestCoreSeconds    float64   `json:"cpuRequestCoreSeconds"`
	MemoryRequestByteSeconds float64   `json:"memoryRequestByteSeconds"`
	CPULimitCoreSeconds      float64   `json:"cpuLimitCoreSeconds"`
	MemoryLimitByteSeconds   float64   `json:"memoryLimitByteSeconds"`
}

// TestMeteringCountsRealPods: a Pod the kubelet really runs is counted in
// the metering Pod's stdout records with exactly its requests and limits.
func TestMeteringCountsRealPods(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	const ns = "metered"
	g.Expect(client.IgnoreAlreadyExists(e.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))).To(Succeed())
	cpuReq, memReq := resource.MustParse("250m"), resource.MustParse("64Mi")
	cpuLim, memLim := resource.MustParse("500m"), resource.MustParse("128Mi")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: pauseImage, ImagePullPolicy: corev1.PullNever,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: cpuReq, corev1.ResourceMemory: memReq},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: cpuLim, corev1.ResourceMemory: memLim},
			},
		}}},
	}
	g.Expect(e.c.Create(ctx, pod)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(e.c.Get(ctx, client.ObjectKeyFromObject(pod), pod)).To(Succeed())
		g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
	}).Should(Succeed(), "the kubelet runs the pod")

	// Two complete windows with the pod running throughout: their pod
	// seconds are a full window each, and every resource is the pod's
	// reservation times those seconds.
	g.Eventually(func(g Gomega) {
		pods := componentPods(ctx, g, e, "metering")
		g.Expect(pods).NotTo(BeEmpty())
		raw, err := e.cs.CoreV1().Pods(namespace).GetLogs(pods[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		var full []usageLine
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r usageLine
			if json.Unmarshal(sc.Bytes(), &r) != nil || r.ID == "" || r.Namespace != ns {
				continue // a log line, or another namespace
			}
			window := r.WindowEnd.Sub(r.WindowStart).Seconds()
			g.Expect(window).To(Equal(10.0))
			if r.PodSeconds == window {
				full = append(full, r)
			}
		}
		g.Expect(len(full)).To(BeNumerically(">=", 2), "complete windows of %s so far", ns)
		for _, r := range full {
			g.Expect(r.CPURequestCoreSeconds).To(BeNumerically("~", cpuReq.AsApproximateFloat64()*r.PodSeconds, 1e-6))
			g.Expect(r.MemoryRequestByteSeconds).To(BeNumerically("~", memReq.AsApproximateFloat64()*r.PodSeconds, 1))
			g.Expect(r.CPULimitCoreSeconds).To(BeNumerically("~", cpuLim.AsApproximateFloat64()*r.PodSeconds, 1e-6))
			g.Expect(r.MemoryLimitByteSeconds).To(BeNumerically("~", memLim.AsApproximateFloat64()*r.PodSeconds, 1))
		}
	}).WithTimeout(3*time.Minute).WithPolling(2*time.Second).Should(Succeed(), "the metering Pod writes records of %s", ns)
}

// TestMetricsThroughService: /metrics of each component, reached at the
// addresses its metrics Service selects, answers a token allowed to get
// /metrics and refuses anonymous callers and tokens without that right.
func TestMetricsThroughService(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	reader := serviceAccountToken(ctx, g, e, "metrics-reader", true)
	stranger := serviceAccountToken(ctx, g, e, "metrics-stranger", false)
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		// The chart's default certificate is self-signed.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the chart's self-signed default certificate, see above
	}}
	get := func(url, token string) (int, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		g.Expect(err).NotTo(HaveOccurred())
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		// Only read: an error closing the body loses nothing.
		defer func() { _ = resp.Body.Close() }()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() && b.Len() < 1<<16 {
			b.WriteString(sc.Text() + "\n")
		}
		return resp.StatusCode, b.String()
	}
	for _, component := range []string{"replicator", "metering"} {
		var svc corev1.Service
		g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: component + "-metrics"}, &svc)).To(Succeed())
		// No kube-proxy on the node: call each endpoint the Service selects
		// (EndpointSlices are what kube-proxy would route to).
		var urls []string
		g.Eventually(func(g Gomega) {
			var slices discoveryv1.EndpointSliceList
			g.Expect(e.c.List(ctx, &slices, client.InNamespace(namespace),
				client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name})).To(Succeed())
			urls = nil
			for _, s := range slices.Items {
				for _, p := range s.Ports {
					if p.Name == nil || *p.Name != "metrics" || p.Port == nil {
						continue
					}
					for _, ep := range s.Endpoints {
						if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
							urls = append(urls, "https://"+net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*p.Port)))+"/metrics")
						}
					}
				}
			}
			g.Expect(urls).To(HaveLen(len(componentPods(ctx, g, e, component))), "every %s Pod is behind %s", component, svc.Name)
		}).Should(Succeed())
		for _, url := range urls {
			code, body := get(url, reader)
			g.Expect(code).To(Equal(http.StatusOK), "%s with the reader's token: %s", url, body)
			g.Expect(body).To(ContainSubstring("# TYPE"), "Prometheus text from %s", url)
			code, _ = get(url, "")
			g.Expect(code).To(Equal(http.StatusUnauthorized), "%s without a token", url)
			code, _ = get(url, stranger)
			g.Expect(code).To(Equal(http.StatusForbidden), "%s with a token not allowed /metrics", url)
		}
	}
}

// serviceAccountToken creates a ServiceAccount, bound to the chart's
// metrics reader ClusterRole when bind, and returns a token of it.
func serviceAccountToken(ctx context.Context, g Gomega, e *env, name string, bind bool) string {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	g.Expect(client.IgnoreAlreadyExists(e.c.Create(ctx, sa))).To(Succeed())
	if bind {
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "meshstack-operator-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: "default"}},
		}
		g.Expect(client.IgnoreAlreadyExists(e.c.Create(ctx, crb))).To(Succeed())
	}
	tr, err := e.cs.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// leader is the Pod holding the component's Lease (identity
// <pod name>_<uuid>).
func leader(ctx context.Context, g Gomega, e *env, component string) string {
	var l coordinationv1.Lease
	g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "meshstack-operator-" + component}, &l)).To(Succeed())
	g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
	holder, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
	g.Expect(holder).NotTo(BeEmpty())
	return holder
}

// TestLeaderHandover: deleting the replicator leader's Pod hands the Lease
// to another replica (the standby, or the Pod the Deployment starts in its
// place, whichever acquires it first), which then serves a new project.
func TestLeaderHandover(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	var old string
	g.Eventually(func(g Gomega) {
		old = leader(ctx, g, e, "replicator")
		g.Expect(componentPods(ctx, g, e, "replicator")).To(HaveLen(2))
	}).Should(Succeed())
	t.Logf("deleting the leader Pod %s", old)
	deleted := time.Now()
	g.Expect(e.c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: old}})).To(Succeed())
	// The leader releases the Lease when it stops; at worst the standby
	// takes it once leaseDuration (15s) has passed.
	var next string
	g.Eventually(func(g Gomega) {
		next = leader(ctx, g, e, "replicator")
		g.Expect(next).NotTo(Equal(old))
		pods := componentPods(ctx, g, e, "replicator")
		running := make([]string, 0, len(pods))
		for _, p := range pods {
			running = append(running, p.Name)
		}
		g.Expect(running).To(ContainElement(next), "the new holder is a running replica")
	}).WithTimeout(45 * time.Second).Should(Succeed())
	t.Logf("leadership handed over to %s in %s", next, time.Since(deleted).Round(100*time.Millisecond))
	p := &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: "acme-handover"},
		Spec:       meshv1.MeshProjectSpec{CustomerIdentifier: "acme", ProjectIdentifier: "handover"},
	}
	g.Expect(client.IgnoreAlreadyExists(e.c.Create(ctx, p))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(e.c.Get(ctx, client.ObjectKeyFromObject(p), p)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, "Ready")).To(BeTrue(), "conditions %v", p.Status.Conditions)
	}).Should(Succeed(), "the new leader serves a new project")
}

// TestReplicatorMemoryUnderBurst: 1,000 projects at once; the leader
// converges them all within the chart's memory limit, without an OOM kill,
// and the test reports the container's peak memory from its cgroup.
func TestReplicatorMemoryUnderBurst(t *testing.T) {
	e := cluster(t)
	g := newG(t)
	ctx := t.Context()
	var holder corev1.Pod
	g.Eventually(func(g Gomega) {
		g.Expect(e.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: leader(ctx, g, e, "replicator")}, &holder)).To(Succeed())
		g.Expect(holder.Status.ContainerStatuses).NotTo(BeEmpty())
		g.Expect(holder.Status.ContainerStatuses[0].ContainerID).NotTo(BeEmpty())
	}).Should(Succeed())
	applySamples(ctx, g, e) // the burst's projects are in the sample zone
	limit := holder.Spec.Containers[0].Resources.Limits.Memory()
	g.Expect(limit.IsZero()).To(BeFalse(), "the chart sets a memory limit")
	cgroup := containerMemoryCgroup(g, holder)
	g.Expect(readInt(g, filepath.Join(cgroup, "memory.limit_in_bytes"))).To(Equal(limit.Value()), "the kubelet applied the chart's limit")

	start := time.Now()
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var createErr error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range names {
				p := &meshv1.MeshProject{
					ObjectMeta: metav1.ObjectMeta{Name: "burst-" + name},
					Spec: meshv1.MeshProjectSpec{CustomerIdentifier: "burst", ProjectIdentifier: meshv1.Identifier(name),
						LandingZone:  "standard",
						RoleBindings: []meshv1.ProjectRoleBinding{{Role: "admin", Users: []meshv1.SubjectName{meshv1.SubjectName("owner-" + name)}}}},
				}
				if err := client.IgnoreAlreadyExists(e.c.Create(ctx, p)); err != nil {
					mu.Lock()
					createErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range burstProjects {
		names <- fmt.Sprintf("p%04d", i)
	}
	close(names)
	wg.Wait()
	g.Expect(createErr).NotTo(HaveOccurred())
	t.Logf("created %d projects in %s", burstProjects, time.Since(start).Round(time.Second))
	g.Eventually(func(g Gomega) {
		var list meshv1.MeshProjectList
		g.Expect(e.c.List(ctx, &list)).To(Succeed())
		ready := 0
		for _, p := range list.Items {
			if strings.HasPrefix(p.Name, "burst-") && meta.IsStatusConditionTrue(p.Status.Conditions, "Ready") {
				ready++
			}
		}
		g.Expect(ready).To(Equal(burstProjects))
	}).WithTimeout(10*time.Minute).WithPolling(5*time.Second).Should(Succeed(), "all burst projects Ready")
	t.Logf("%d projects Ready %s after the first was created", burstProjects, time.Since(start).Round(time.Second))

	peak := readInt(g, filepath.Join(cgroup, "memory.max_usage_in_bytes"))
	failcnt := readInt(g, filepath.Join(cgroup, "memory.failcnt"))
	t.Logf("replicator %s: peak memory %.1f MiB of the limit %s (memory.max_usage_in_bytes, page cache included); failcnt %d",
		holder.Name, float64(peak)/(1<<20), limit, failcnt)
	fmt.Printf("REPLICATOR_PEAK_MIB=%.1f\n", float64(peak)/(1<<20))
	g.Expect(peak).To(BeNumerically("<", limit.Value()))
	g.Expect(e.c.Get(ctx, client.ObjectKeyFromObject(&holder), &holder)).To(Succeed())
	g.Expect(holder.Status.ContainerStatuses[0].RestartCount).To(BeZero(), "the replicator was not OOM-killed")
}

// containerMemoryCgroup is the memory cgroup (v1) directory of the Pod's
// first container: node.sh's cgroup root, the QoS class, the Pod, the
// container.
func containerMemoryCgroup(g Gomega, p corev1.Pod) string {
	_, id, ok := strings.Cut(p.Status.ContainerStatuses[0].ContainerID, "://")
	g.Expect(ok).To(BeTrue())
	qos := ""
	switch p.Status.QOSClass {
	case corev1.PodQOSBurstable:
		qos = "burstable"
	case corev1.PodQOSBestEffort:
		qos = "besteffort"
	}
	dir := filepath.Join("/sys/fs/cgroup/memory/meshstack-node/kubepods", qos, "pod"+string(p.UID), id)
	_, err := os.Stat(dir)
	g.Expect(err).NotTo(HaveOccurred(), "the container's memory cgroup")
	return dir
}

func readInt(g Gomega, path string) int64 {
	b, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred())
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	g.Expect(err).NotTo(HaveOccurred())
	return v
}
