package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The seed's kube-apiserver settings for meshStack's identity federation.
const (
	oidcClientID      = "meshfed-oidc"
	oidcGroupsClaim   = "MC_CUSTOMER_PROJECTS"
	oidcUsernameClaim = "sub"
	releaseNamespace  = "meshcloud"
)

// The chart installed into a control plane whose kube-apiserver trusts an
// OIDC issuer with meshStack's settings, both components run out of cluster
// under the chart's ServiceAccounts' tokens, and the samples applied: the
// specs check namespaces, bindings, usage records and what users signed in
// with ID tokens may do, then uninstall the chart. They run in order on the
// one installation; a failing one does not stop the others.
var _ = Describe("The chart installed with helm", Ordered, ContinueOnFailure, func() {
	ctx := context.Background()
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	var (
		dir, adminKubeconfig, usageFile string
		issuer                          *framework.OIDCIssuer
		fw                              *framework.Framework
		c                               client.Client
		replicator, meter               *component
	)

	BeforeAll(func() {
		framework.RequireTool(GinkgoTB(), "kubectl", "this test applies config/samples with it, as the README does")
		dir = GinkgoT().TempDir()
		var err error
		issuer, err = framework.StartOIDCIssuer(dir, "/auth/realms/meshfed")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(issuer.Close)
		fw, err = framework.Start(
			// helm install brings the CRD.
			framework.WithoutCRDs(),
			framework.WithAPIServerFlag("oidc-issuer-url", issuer.URL),
			framework.WithAPIServerFlag("oidc-ca-file", issuer.CAFile),
			framework.WithAPIServerFlag("oidc-client-id", oidcClientID),
			framework.WithAPIServerFlag("oidc-username-claim", oidcUsernameClaim),
			framework.WithAPIServerFlag("oidc-username-prefix", "mesh:"),
			framework.WithAPIServerFlag("oidc-groups-claim", oidcGroupsClaim),
			framework.WithAPIServerFlag("oidc-groups-prefix", ""),
			framework.WithAPIServerFlag("cors-allowed-origins", "http://localhost:9001,https://.*"),
		)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = fw.Stop() })
		c = fw.Client

		adminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
		data, err := fw.AdminKubeconfig()
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(adminKubeconfig, data, 0o600)).To(Succeed())

		// envtest runs no scheduler or kubelet: the chart's Deployments are
		// created but never run. The components run below as processes instead.
		By("helm install meshstack-operator " + framework.ChartDir + " -n meshcloud --create-namespace")
		_, err = framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
			"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig,
			"--set", "tokenSecrets.enabled=true")
		Expect(err).NotTo(HaveOccurred())

		// envtest runs no aggregation controller: fill admin, edit and view.
		Expect(fw.FillAggregatedClusterRoles(ctx)).To(Succeed())

		By("running the replicator and the meter, each under its ServiceAccount's token only")
		usageFile = filepath.Join(dir, "usage.jsonl")
		replicator = runComponent(fw, dir, "meshfed-service", "--components=replicator")
		meter = runComponent(fw, dir, "meshfed-metering", "--components=metering",
			"--metering-output="+usageFile, "--metering-interval=500ms", "--metering-window=2s")

		By("kubectl apply -f config/samples")
		apply := exec.CommandContext(ctx, "kubectl", "--kubeconfig", adminKubeconfig, "apply", "-f", "config/samples")
		apply.Dir = framework.RepoRoot()
		out, err := apply.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "kubectl apply: %s", out)
	})

	It("installs the CRD and the ServiceAccounts with their token Secrets", func() {
		Expect(c.Get(ctx, client.ObjectKey{Name: "meshprojects.meshcloud.io"}, crd)).To(Succeed(), "helm install installs the CRD")
		for _, name := range []string{"meshfed-service", "meshfed-metering"} {
			var sa corev1.ServiceAccount
			Expect(c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: name}, &sa)).To(Succeed())
			var secret corev1.Secret
			Expect(c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: name + "-token"}, &secret)).To(Succeed())
			Expect(secret.Type).To(Equal(corev1.SecretTypeServiceAccountToken))
		}
	})

	It("converges the samples with their RoleBindings and the landing zone's quota, each component holding its Lease", func() {
		for _, name := range []string{"acme-webshop", "acme-analytics"} {
			Eventually(func(g Gomega) {
				var p meshv1.MeshProject
				g.Expect(c.Get(ctx, client.ObjectKey{Name: name}, &p)).To(Succeed())
				g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, "Ready")).To(BeTrue(), "conditions %v", p.Status.Conditions)
				g.Expect(p.Status.Namespace).To(Equal(name))
			}).Should(Succeed(), "MeshProject %s becomes Ready (replicator log: %s)", name, replicator)
			var ns corev1.Namespace
			Expect(c.Get(ctx, client.ObjectKey{Name: name}, &ns)).To(Succeed())
		}
		Expect(binding(ctx, c, "acme-webshop", "admin")).
			To(ConsistOf(rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "mesh:alice"}))
		Expect(binding(ctx, c, "acme-webshop", "edit")).
			To(ConsistOf(rbacv1.Subject{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "acme-webshop-developers"}))
		Expect(binding(ctx, c, "acme-webshop", "view")).To(ConsistOf(rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "mesh:bob"}))
		Expect(binding(ctx, c, "acme-analytics", "admin")).
			To(ConsistOf(rbacv1.Subject{Kind: "User", APIGroup: rbacv1.GroupName, Name: "mesh:carol"}))
		// acme-analytics is in the sample landing zone: the chart's landing-zone
		// role lets the replicator give it the zone's quota.
		var quota corev1.ResourceQuota
		Expect(c.Get(ctx, client.ObjectKey{Namespace: "acme-analytics", Name: "meshproject-quota"}, &quota)).To(Succeed())
		Expect(quota.Spec.Hard.Pods().String()).To(Equal("50"))

		// Both components elected a leader with the Role the chart gave them.
		for _, lease := range []string{"meshstack-operator-replicator", "meshstack-operator-metering"} {
			Eventually(func(g Gomega) {
				var l coordinationv1.Lease
				g.Expect(c.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: lease}, &l)).To(Succeed())
				g.Expect(l.Spec.HolderIdentity).NotTo(BeNil())
			}).Should(Succeed(), "Lease %s/%s is held", releaseNamespace, lease)
		}
	})

	// Users signed in with ID tokens the way meshStack's identity broker
	// issues them: what the samples' bindings let them do.
	Describe("to users signed in with ID tokens as meshStack's identity broker issues them", func() {
		var alice, bob, carol, dave *kubernetes.Clientset
		BeforeAll(func() {
			user := func(sub string, groups ...string) *kubernetes.Clientset {
				claims := map[string]any{oidcUsernameClaim: sub, "email": sub + "@acme.example"}
				if groups != nil {
					claims[oidcGroupsClaim] = groups
				}
				token, err := issuer.IDToken(oidcClientID, claims)
				Expect(err).NotTo(HaveOccurred())
				return bearerClient(fw.Config, token)
			}
			alice = user("alice", "acme-analytics-viewers")
			bob = user("bob")
			carol = user("carol")
			dave = user("dave", "acme-webshop-developers")

			// kube-apiserver fetches the issuer's keys in the background; until
			// then it rejects ID tokens.
			var review *authenticationv1.SelfSubjectReview
			Eventually(func() error {
				var err error
				review, err = alice.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
				return err
			}).Should(Succeed(), "kube-apiserver accepts ID tokens of %s", issuer.URL)
			Expect(review.Status.UserInfo.Username).To(Equal("mesh:alice"), "username claim sub with prefix mesh:")
			Expect(review.Status.UserInfo.Groups).To(ContainElement("acme-analytics-viewers"), "groups claim %s without prefix", oidcGroupsClaim)
		})

		It("rejects an ID token issued to another client", func() {
			token, err := issuer.IDToken("another-client", map[string]any{oidcUsernameClaim: "alice"})
			Expect(err).NotTo(HaveOccurred())
			_, err = bearerClient(fw.Config, token).CoreV1().ConfigMaps("acme-webshop").List(ctx, metav1.ListOptions{})
			Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "got %v", err)
		})
		It("lets a project admin create a ConfigMap", func() {
			Expect(createConfigMap(ctx, alice, "acme-webshop", "from-alice")).To(Succeed())
		})
		It("lets a viewer read but not write", func() {
			_, err := bob.CoreV1().ConfigMaps("acme-webshop").Get(ctx, "from-alice", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(apierrors.IsForbidden(createConfigMap(ctx, bob, "acme-webshop", "from-bob"))).To(BeTrue())
		})
		It("forbids a user of another project", func() {
			_, err := carol.CoreV1().ConfigMaps("acme-webshop").Get(ctx, "from-alice", metav1.GetOptions{})
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
			Expect(apierrors.IsForbidden(createConfigMap(ctx, carol, "acme-webshop", "from-carol"))).To(BeTrue())
			Expect(createConfigMap(ctx, carol, "acme-analytics", "from-carol")).To(Succeed(), "carol is admin of acme-analytics")
		})
		It("lets a group member act through the group claim", func() {
			Expect(createConfigMap(ctx, dave, "acme-webshop", "from-dave")).To(Succeed())
			Expect(apierrors.IsForbidden(createConfigMap(ctx, dave, "acme-analytics", "from-dave"))).To(BeTrue())
		})
		It("forbids a user once removed from the MeshProject", func() {
			var p meshv1.MeshProject
			Expect(fw.Client.Get(ctx, client.ObjectKey{Name: "acme-webshop"}, &p)).To(Succeed())
			patch := client.MergeFrom(p.DeepCopy())
			var kept []meshv1.ProjectRoleBinding
			for _, b := range p.Spec.RoleBindings {
				if b.Role != "admin" {
					kept = append(kept, b)
				}
			}
			p.Spec.RoleBindings = kept
			Expect(fw.Client.Patch(ctx, &p, patch)).To(Succeed())
			Eventually(func() error {
				err := createConfigMap(ctx, alice, "acme-webshop", "from-alice-again")
				if apierrors.IsForbidden(err) {
					return nil
				}
				return fmt.Errorf("alice can still create ConfigMaps in acme-webshop (err %w)", err)
			}).Should(Succeed())
			_, err := alice.CoreV1().ConfigMaps("acme-webshop").Get(ctx, "from-alice", metav1.GetOptions{})
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
			Expect(createConfigMap(ctx, dave, "acme-webshop", "from-dave-again")).To(Succeed(), "the other bindings stay")
		})
	})

	It("meters a running pod into a usage record of its project", func() {
		// A running pod for the meter to count. Its start is now, so its first
		// window is counted from here on.
		pod := framework.Pod("acme-webshop", "web", corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}})
		Expect(framework.CreateRunningPod(ctx, c, pod, time.Now())).To(Succeed())

		By("waiting for a usage record of acme-webshop in " + usageFile)
		Eventually(func(g Gomega) {
			records := readUsage(g, usageFile)
			var found bool
			for _, r := range records {
				if r.Namespace == "acme-webshop" && r.PodSeconds > 0 {
					g.Expect(r.CustomerIdentifier).To(Equal("acme"))
					g.Expect(r.ProjectIdentifier).To(Equal("webshop"))
					g.Expect(r.ID).NotTo(BeEmpty())
					g.Expect(r.CPURequestCoreSeconds).To(BeNumerically(">", 0))
					g.Expect(r.WindowEnd.Sub(r.WindowStart)).To(Equal(2 * time.Second))
					found = true
				}
			}
			g.Expect(found).To(BeTrue(), "records so far: %+v", records)
		}).Should(Succeed(), "the meter writes a usage record (log: %s)", meter)
	})

	It("stops the components cleanly and uninstalls, leaving only the CRD and the MeshProjects", func() {
		// Stop the components before their accounts go.
		for _, p := range []*component{replicator, meter} {
			Expect(p.Stop()).To(Succeed(), "%s exits cleanly on SIGTERM", p)
		}

		By("helm uninstall meshstack-operator -n meshcloud")
		_, err := framework.Helm(ctx, dir, "uninstall", "meshstack-operator", "--namespace", releaseNamespace, "--kubeconfig", adminKubeconfig)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			var roles rbacv1.ClusterRoleList
			g.Expect(c.List(ctx, &roles)).To(Succeed())
			var bindings rbacv1.ClusterRoleBindingList
			g.Expect(c.List(ctx, &bindings)).To(Succeed())
			var sas corev1.ServiceAccountList
			g.Expect(c.List(ctx, &sas, client.InNamespace(releaseNamespace))).To(Succeed())
			var secrets corev1.SecretList
			g.Expect(c.List(ctx, &secrets, client.InNamespace(releaseNamespace))).To(Succeed())
			left := make([]string, 0, len(roles.Items)+len(bindings.Items)+len(sas.Items)+len(secrets.Items))
			for _, r := range roles.Items {
				left = append(left, fromChart("ClusterRole", r.ObjectMeta)...)
			}
			for _, b := range bindings.Items {
				left = append(left, fromChart("ClusterRoleBinding", b.ObjectMeta)...)
			}
			for _, sa := range sas.Items {
				left = append(left, fromChart("ServiceAccount", sa.ObjectMeta)...)
			}
			for _, s := range secrets.Items {
				left = append(left, fromChart("Secret", s.ObjectMeta)...)
			}
			g.Expect(left).To(BeEmpty(), "helm uninstall leaves these behind")
		}).Should(Succeed())
		Expect(c.Get(ctx, client.ObjectKey{Name: "meshprojects.meshcloud.io"}, crd)).To(Succeed(), "the CRD stays after helm uninstall")
		var projects meshv1.MeshProjectList
		Expect(c.List(ctx, &projects)).To(Succeed())
		Expect(projects.Items).To(HaveLen(2), "the MeshProjects stay with the CRD")
	})
})

// fromChart names obj when it looks like one of the chart's: a seed name,
// a meshstack-operator- name or the chart's instance label.
func fromChart(kind string, obj metav1.ObjectMeta) []string {
	if strings.HasPrefix(obj.Name, "meshfed-") || strings.HasPrefix(obj.Name, "meshstack-operator") ||
		obj.Labels["app.kubernetes.io/instance"] == "meshstack-operator" {
		return []string{kind + "/" + obj.Name}
	}
	return nil
}

// binding returns the subjects of the RoleBinding the replicator made for
// role in namespace.
func binding(ctx context.Context, c client.Client, namespace, role string) []rbacv1.Subject {
	GinkgoHelper()
	var rb rbacv1.RoleBinding
	Expect(c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "meshproject-" + role}, &rb)).To(Succeed())
	Expect(rb.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}))
	return rb.Subjects
}

// component is the operator binary running one component.
type component struct {
	*framework.Process
	log string
}

func (c *component) String() string {
	data, _ := os.ReadFile(c.log)
	return c.log + ":\n" + string(data)
}

// runComponent runs the operator binary authenticated only by a TokenRequest
// token of the ServiceAccount, with leader election in the release
// namespace.
func runComponent(fw *framework.Framework, dir, serviceAccount string, args ...string) *component {
	GinkgoHelper()
	kubeconfig := filepath.Join(dir, serviceAccount+".kubeconfig")
	data, err := fw.TokenKubeconfig(context.Background(), framework.ServiceAccount{Namespace: releaseNamespace, Name: serviceAccount}, 3600)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(kubeconfig, data, 0o600)).To(Succeed())
	log := filepath.Join(dir, serviceAccount+".log")
	p, err := framework.StartProcess(operatorBinary, log, append([]string{
		"--kubeconfig=" + kubeconfig, "--leader-elect", "--leader-election-namespace=" + releaseNamespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0"}, args...)...)
	Expect(err).NotTo(HaveOccurred())
	c := &component{Process: p, log: log}
	DeferCleanup(func() {
		if err := p.Stop(); err != nil || CurrentSpecReport().Failed() {
			framework.Logf("%s stopped with %v; %s", serviceAccount, err, c)
		}
	})
	return c
}

// readUsage parses the complete lines of a JSON Lines file.
func readUsage(g Gomega, path string) []usage.Record {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	g.Expect(err).NotTo(HaveOccurred())
	var records []usage.Record
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		var r usage.Record
		g.Expect(json.Unmarshal(s.Bytes(), &r)).To(Succeed(), "line %q", s.Text())
		records = append(records, r)
	}
	return records
}

// bearerClient authenticates with token alone: no client certificate.
func bearerClient(admin *rest.Config, token string) *kubernetes.Clientset {
	GinkgoHelper()
	cfg := &rest.Config{
		Host:            admin.Host,
		TLSClientConfig: rest.TLSClientConfig{CAData: admin.CAData},
		BearerToken:     token,
	}
	cs, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	return cs
}

func createConfigMap(ctx context.Context, cs *kubernetes.Clientset, namespace, name string) error {
	_, err := cs.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Data:       map[string]string{"hello": "world"},
	}, metav1.CreateOptions{})
	return err
}
