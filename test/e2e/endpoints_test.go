package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// freeAddress is a loopback address nothing listens on right now.
func freeAddress() string {
	GinkgoHelper()
	addr, err := framework.FreeAddress()
	Expect(err).NotTo(HaveOccurred())
	return addr
}

// The spec runs the binary with both components and checks what
// --metrics-bind-address and --health-probe-bind-address serve: metrics
// over HTTPS to a caller allowed to get /metrics only, and probes.
var _ = Describe("The metrics and probe endpoints", func() {
	It("serve metrics over HTTPS only to callers allowed /metrics, bound what a token flood costs, and serve probes", func() {
		dir := GinkgoT().TempDir()
		fw, kubeconfig := startControlPlane(dir)

		metrics, probes := freeAddress(), freeAddress()
		p, err := framework.StartProcess(operatorBinary, filepath.Join(dir, "operator.log"),
			"--kubeconfig="+kubeconfig, "--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes,
			"--metering-output="+filepath.Join(dir, "usage.jsonl"), "--metering-interval=200ms", "--metering-window=1s",
			"--leader-election-namespace=default")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = p.Stop() })

		reader := scraperToken(fw, "scraper", true)
		stranger := scraperToken(fw, "stranger", false)
		Eventually(func(g Gomega) {
			g.Expect(httpGet(g, "http://"+probes+"/healthz", "")).To(Equal(http.StatusOK))
			g.Expect(httpGet(g, "http://"+probes+"/readyz", "")).To(Equal(http.StatusOK))
			g.Expect(httpGet(g, "https://"+metrics+"/metrics", "")).To(Equal(http.StatusUnauthorized), "no token")
			g.Expect(httpGet(g, "https://"+metrics+"/metrics", "not-a-token")).
				To(Equal(http.StatusUnauthorized), "a token the API server does not know")
			g.Expect(httpGet(g, "https://"+metrics+"/metrics", stranger)).To(Equal(http.StatusForbidden), "a token not bound to the reader role")
			var body string
			g.Expect(httpGetBody(g, "https://"+metrics+"/metrics", reader, &body)).To(Equal(http.StatusOK))
			g.Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="meshproject"`))
			g.Expect(body).To(ContainSubstring("meshstack_metering_last_success_timestamp_seconds "))
			g.Expect(body).To(ContainSubstring("meshstack_metering_pods_seen"))
		}).Should(Succeed(), "log: %s", filepath.Join(dir, "operator.log"))

		// A flood of made-up tokens costs the API server a bounded number of
		// TokenReviews (a burst of 20, then 5 a second), counted by the API
		// server itself; the reader keeps being served from its remembered
		// decision.
		reviewsBefore := tokenReviews(Default, fw)
		Expect(reviewsBefore).To(BeNumerically(">", 0), "the API server counted none of the reviews above: is the metric read right?")
		start := time.Now()
		statuses := map[int]int{}
		for i := range 1000 {
			statuses[httpGet(Default, "https://"+metrics+"/metrics", fmt.Sprintf("made-up-%d", i))]++
		}
		Expect(httpGet(Default, "https://"+metrics+"/metrics", reader)).To(Equal(http.StatusOK), "the reader during the flood")
		elapsed := time.Since(start)
		reviews := tokenReviews(Default, fw) - reviewsBefore
		framework.Logf("1,000 made-up tokens in %v: %v; %d TokenReviews reached the API server",
			elapsed.Round(time.Millisecond), statuses, reviews)
		Expect(reviews).To(BeNumerically("<=", 20+5*elapsed.Seconds()+1), "TokenReviews for 1,000 made-up tokens")
		Expect(statuses[http.StatusTooManyRequests]).To(BeNumerically(">", 0))
		Expect(p.Stop()).To(Succeed(), "a clean exit on SIGTERM")

		// --metrics-secure=false serves plain HTTP to anyone.
		plain := freeAddress()
		p, err = framework.StartProcess(operatorBinary, filepath.Join(dir, "plain.log"),
			"--kubeconfig="+kubeconfig, "--components=replicator", "--metrics-secure=false", "--metrics-bind-address="+plain,
			"--health-probe-bind-address=0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = p.Stop() })
		Eventually(func(g Gomega) {
			g.Expect(httpGet(g, "http://"+plain+"/metrics", "")).To(Equal(http.StatusOK))
		}).Should(Succeed(), "log: %s", filepath.Join(dir, "plain.log"))
	})
})

// /readyz fails until the replicator's informers have synced
// and until the meter can read its checkpoint, for leaders and standbys
// alike, while /healthz is fine all along.
var _ = Describe("Readiness", func() {
	It("fails until the informers have synced and the checkpoint can be read, for standbys too, while liveness passes", func() {
		ctx := context.Background()
		dir := GinkgoT().TempDir()
		fw, _ := startControlPlane(dir)

		// Each component runs under a ServiceAccount that at first lacks what it
		// needs to become ready: the replicator may not list MeshProjects and
		// the rest, the meter may not read its checkpoint.
		replicator, err := fw.CreateServiceAccount(ctx, "meshcloud", "replicator-sa")
		Expect(err).NotTo(HaveOccurred())
		meter, err := fw.CreateServiceAccount(ctx, "meshcloud", "meter-sa")
		Expect(err).NotTo(HaveOccurred())
		Expect(bindSeedMeteringRules(ctx, fw, meter)).To(Succeed())

		start := func(name string, sa framework.ServiceAccount, args ...string) string {
			data, err := fw.TokenKubeconfig(ctx, sa, 3600)
			Expect(err).NotTo(HaveOccurred())
			kubeconfig := filepath.Join(dir, name+".kubeconfig")
			Expect(os.WriteFile(kubeconfig, data, 0o600)).To(Succeed())
			probes := freeAddress()
			p, err := framework.StartProcess(operatorBinary, filepath.Join(dir, name+".log"), append([]string{
				"--kubeconfig=" + kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=" + probes,
				"--leader-election-namespace=meshcloud"}, args...)...)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() {
				_ = p.Stop()
				if CurrentSpecReport().Failed() {
					log, _ := os.ReadFile(filepath.Join(dir, name+".log"))
					framework.Logf("%s.log:\n%s", name, log)
				}
			})
			return probes
		}
		replicatorProbes := start("replicator", replicator, "--components=replicator")
		// Two meters with leader election, both standbys: a third holds the
		// Lease. (A leader that cannot read its checkpoint exits, and its
		// Deployment restarts it.) Leader election itself needs the Lease.
		Expect(bindLeases(ctx, fw, meter)).To(Succeed())
		now := metav1.NewMicroTime(time.Now())
		Expect(fw.Client.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "meshcloud", Name: "meshstack-operator-metering"},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("another-meter"), LeaseDurationSeconds: ptr.To[int32](3600),
				AcquireTime: &now, RenewTime: &now},
		})).To(Succeed())
		meterProbes := []string{
			start("meter-1", meter, "--components=metering", "--leader-elect", "--metering-interval=200ms", "--metering-window=1s"),
			start("meter-2", meter, "--components=metering", "--leader-elect", "--metering-interval=200ms", "--metering-window=1s"),
		}
		all := append([]string{replicatorProbes}, meterProbes...)
		for _, probes := range all {
			Eventually(func(g Gomega) {
				g.Expect(httpGet(g, "http://"+probes+"/healthz", "")).To(Equal(http.StatusOK))
			}).Should(Succeed())
		}
		Consistently(func(g Gomega) {
			for _, probes := range all {
				g.Expect(httpGet(g, "http://"+probes+"/readyz", "")).To(Equal(http.StatusInternalServerError), "%s ready too early", probes)
			}
		}, 3*time.Second, 200*time.Millisecond).Should(Succeed())

		// With their roles, all become ready: the standby meters at the next
		// probe, the replicator once its informers' next retry lists.
		_, err = fw.CreateServiceAccount(ctx, "meshcloud", "replicator-sa", "config/rbac/replicator/role.yaml")
		Expect(err).NotTo(HaveOccurred())
		_, err = fw.CreateServiceAccount(ctx, "meshcloud", "meter-sa", "config/rbac/metering/role.yaml")
		Expect(err).NotTo(HaveOccurred())
		for _, probes := range all {
			Eventually(func(g Gomega) {
				g.Expect(httpGet(g, "http://"+probes+"/readyz", "")).To(Equal(http.StatusOK))
			}, readyAfterGrant).Should(Succeed(), "%s never ready (logs in %s)", probes, dir)
		}
	})
})

// readyAfterGrant bounds how long a component takes to become ready once
// it has its roles: the replicator's informers retry their List with a
// backoff that reaches about 30 s, so the next retry may be that far off.
const readyAfterGrant = 90 * time.Second

// bindSeedMeteringRules grants the seed's meshfed-metering rules alone.
func bindSeedMeteringRules(ctx context.Context, fw *framework.Framework, sa framework.ServiceAccount) error {
	return bindRules(ctx, fw, sa, "readiness-seed-metering", []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}}})
}

// bindLeases grants leader election in meshcloud, cluster-wide for brevity.
func bindLeases(ctx context.Context, fw *framework.Framework, sa framework.ServiceAccount) error {
	return bindRules(ctx, fw, sa, "readiness-leases", []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"},
			Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}}})
}

func bindRules(ctx context.Context, fw *framework.Framework, sa framework.ServiceAccount, name string, rules []rbacv1.PolicyRule) error {
	if err := fw.Client.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}); err != nil {
		return err
	}
	return fw.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}},
	})
}

// tokenReviews is how many TokenReviews the API server has handled, from
// its own apiserver_request_total.
func tokenReviews(g Gomega, fw *framework.Framework) int {
	cs, err := kubernetes.NewForConfig(fw.Config)
	g.Expect(err).NotTo(HaveOccurred())
	body, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	g.Expect(err).NotTo(HaveOccurred())
	total := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "apiserver_request_total{") && strings.Contains(line, `resource="tokenreviews"`) &&
			strings.Contains(line, `verb="POST"`) {
			fields := strings.Fields(line)
			n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			g.Expect(err).NotTo(HaveOccurred())
			total += int(n)
		}
	}
	return total
}

// scraperToken is a token of a new ServiceAccount, bound to a role like the
// chart's meshstack-operator-metrics-reader when reader is set.
func scraperToken(fw *framework.Framework, name string, reader bool) string {
	GinkgoHelper()
	ctx := context.Background()
	sa, err := fw.CreateServiceAccount(ctx, "monitoring", name)
	Expect(err).NotTo(HaveOccurred())
	if reader {
		Expect(bindRules(ctx, fw, sa, name+"-metrics-reader", []rbacv1.PolicyRule{
			{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}})).To(Succeed())
	}
	cs, err := kubernetes.NewForConfig(fw.Config)
	Expect(err).NotTo(HaveOccurred())
	tr, err := cs.CoreV1().ServiceAccounts("monitoring").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return tr.Status.Token
}

// httpGet returns the status of a GET, with a bearer token when given. The
// metrics certificate is self-signed.
func httpGet(g Gomega, url, token string) int {
	var body string
	return httpGetBody(g, url, token, &body)
}

func httpGetBody(g Gomega, url, token string, body *string) int {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	g.Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test server's self-signed certificate
	}}
	resp, err := c.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	*body = string(data)
	return resp.StatusCode
}
