// Package chart checks the Helm chart without a cluster: helm lint, and what
// helm template renders against the seed's objects, the RBAC that
// controller-gen generates from the code's markers, and the operator's flags.
package chart

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const namespace = "meshcloud"

// rendered is the output of helm template, by "Kind/name".
type rendered map[string]*unstructured.Unstructured

// render runs helm template with the given --set/-f arguments.
func render(t *testing.T, args ...string) rendered {
	t.Helper()
	dir := t.TempDir()
	out, err := framework.Helm(context.Background(), dir, append([]string{
		"template", "meshstack-operator", framework.ChartDir, "--namespace", namespace}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs := decode(t, dir, out)
	r := rendered{}
	for _, obj := range objs {
		u := obj.(*unstructured.Unstructured)
		key := u.GetKind() + "/" + u.GetName()
		if _, dup := r[key]; dup {
			t.Fatalf("helm template renders %s twice", key)
		}
		r[key] = u
	}
	return r
}

func decode(t *testing.T, dir string, data []byte) []client.Object {
	t.Helper()
	path := filepath.Join(dir, "objects.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := framework.ReadObjects(path)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// get converts the rendered object kind/name into out, failing when absent.
func (r rendered) get(t *testing.T, kind, name string, out any) {
	t.Helper()
	u, ok := r[kind+"/"+name]
	if !ok {
		t.Fatalf("helm template renders no %s %s; it renders %v", kind, name, r.keys())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
}

func (r rendered) keys() []string {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestHelmLint(t *testing.T) {
	for name, args := range map[string][]string{
		"defaults": nil,
		"everything on": {"--set", "openshift=true", "--set", "roleMapping.auditor=my-custom-role",
			"--set", "metering.output.persistence.enabled=true", "--set", "serviceMonitor.enabled=true",
			"--set", "tokenSecrets.enabled=true", "--set", "landingZones.bindableClusterRoles={my-reader}",
			"--set", "landingZones.defaultLandingZone=standard"},
		"without landing zones": {"--set", "landingZones.enabled=false"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := framework.Helm(context.Background(), t.TempDir(),
				append([]string{"lint", "--strict", framework.ChartDir, "--namespace", namespace}, args...)...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHelmRejectsBadValues(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown key":                     {"--set", "replicas=2"},
		"bad metering window":             {"--set", "metering.window=hourly"},
		"bad role name":                   {"--set", "roleMapping.Admin=admin"},
		"monitor without metric":          {"--set", "serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"},
		"plain http to a remote receiver": {"--set", "metering.output.http.url=http://billing.example.com/usage"},
		"two metering outputs": {"--set", "metering.output.http.url=https://billing.example.com/usage",
			"--set", "metering.output.persistence.enabled=true"},
		"no checkpoint part": {"--set", "metering.checkpoint.parts=0"},
		"bad default zone":   {"--set", "landingZones.defaultLandingZone=Standard Zone"},
		"unknown zone key":   {"--set", "landingZones.maxQuota=1"},
		"bad lease duration": {"--set", "leaderElection.leaseDuration=fifteen"},
		"retry not a string": {"--set", "leaderElection.retryPeriod=2"},
		"unknown lease key":  {"--set", "leaderElection.identity=me"},

		"cluster not a DNS label": {"--set", "metering.cluster=EU_1"},
		"cluster with a slash":    {"--set", "metering.cluster=eu/1"},
		"cluster too long":        {"--set", "metering.cluster=" + strings.Repeat("c", 64)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := framework.Helm(context.Background(), t.TempDir(), append([]string{
				"template", "meshstack-operator", framework.ChartDir, "--namespace", namespace}, args...)...); err == nil {
				t.Errorf("helm template %v succeeded; want it rejected", args)
			}
		})
	}
}

// TestCRDIsTheGeneratedOne: `make manifests` copies the generated CRDs into
// the chart's crds/ directory; the copies must not drift.
func TestCRDIsTheGeneratedOne(t *testing.T) {
	generatedDir := filepath.Join(framework.RepoRoot(), "config", "crd", "bases")
	chartDir := filepath.Join(framework.RepoRoot(), framework.ChartDir, "crds")
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, 0, len(entries))
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	generated := names(generatedDir)
	if !slices.Equal(generated, []string{"meshcloud.io_meshlandingzones.yaml", "meshcloud.io_meshprojects.yaml"}) {
		t.Errorf("config/crd/bases holds %v; want the MeshLandingZone and MeshProject CRDs", generated)
	}
	if got := names(chartDir); !slices.Equal(got, generated) {
		t.Errorf("the chart's crds/ holds %v; want exactly %v: run `make manifests`", got, generated)
	}
	for _, name := range generated {
		want, err := os.ReadFile(filepath.Join(generatedDir, name))
		if err != nil {
			t.Fatal(err)
		}
		inChart, err := os.ReadFile(filepath.Join(chartDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, inChart) {
			t.Errorf("%s/crds/%s differs from config/crd/bases/%s: run `make manifests`", framework.ChartDir, name, name)
		}
	}
}

// TestSeedObjects: the chart renders the seed's ServiceAccounts,
// ClusterRoles and ClusterRoleBindings with their names, namespaces,
// annotations, rules, subjects and roleRefs unchanged (it only adds labels).
func TestSeedObjects(t *testing.T) {
	seedPath := filepath.Join(framework.RepoRoot(), "test", "chart", "testdata", "seed.yaml")
	seed, err := framework.ReadObjects(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(seed) != 6 {
		t.Fatalf("testdata/seed.yaml has %d objects; want the seed's 6", len(seed))
	}
	r := render(t)
	for _, obj := range seed {
		want := obj.(*unstructured.Unstructured)
		key := want.GetKind() + "/" + want.GetName()
		got, ok := r[key]
		if !ok {
			t.Errorf("the chart does not render the seed's %s", key)
			continue
		}
		if got.GetNamespace() != want.GetNamespace() {
			t.Errorf("%s: namespace %q, want %q", key, got.GetNamespace(), want.GetNamespace())
		}
		if !reflect.DeepEqual(got.GetAnnotations(), want.GetAnnotations()) {
			t.Errorf("%s: annotations %v, want %v", key, got.GetAnnotations(), want.GetAnnotations())
		}
		for _, field := range []string{"rules", "subjects", "roleRef", "secrets", "automountServiceAccountToken"} {
			if !reflect.DeepEqual(got.Object[field], want.Object[field]) {
				t.Errorf("%s: %s differ from the seed:\n got: %s\nwant: %s", key, field, toYAML(got.Object[field]), toYAML(want.Object[field]))
			}
		}
	}
}

// TestSeedTestdataIsTheSeed checks testdata/seed.yaml against the seed
// document itself where a checkout has it beside the clone (../shared).
func TestSeedTestdataIsTheSeed(t *testing.T) {
	seedDoc, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "..", "shared", "seed", "kubernetes-integration.txt"))
	if err != nil {
		t.Skipf("the seed document is not beside this clone (%v); testdata/seed.yaml stands for it", err)
	}
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "test", "chart", "testdata", "seed.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n")[1:] {
		if !strings.Contains(string(seedDoc), "---\n"+doc) {
			t.Errorf("testdata/seed.yaml has a document that is not verbatim in the seed:\n%s", doc)
		}
	}
}

// TestCustomRoles: a custom ClusterRole in the role mapping joins the bind
// resourceNames, and openshift=true adds the API groups of the seed's
// "Custom meshProject Roles" example, which the result equals.
func TestCustomRoles(t *testing.T) {
	var example []rbacv1.PolicyRule
	data, err := os.ReadFile(filepath.Join(framework.RepoRoot(), "test", "chart", "testdata", "seed-custom-role-rule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := utilyaml.Unmarshal(data, &example); err != nil {
		t.Fatal(err)
	}
	r := render(t, "--set", "openshift=true", "--set", "roleMapping.auditor=my-custom-role")
	var role rbacv1.ClusterRole
	r.get(t, "ClusterRole", "meshfed-service", &role)
	if got := role.Rules[len(role.Rules)-1]; !reflect.DeepEqual(got, example[0]) {
		t.Errorf("bind rule:\n%s\nwant the seed's example:\n%s", toYAML(got), toYAML(example[0]))
	}
	var d appsv1.Deployment
	r.get(t, "Deployment", "replicator", &d)
	opts := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if got, want := opts.RoleMapping.String(), "admin=admin,auditor=my-custom-role,edit=edit,view=view"; got != want {
		t.Errorf("--role-mapping %q, want %q", got, want)
	}

	// Without openshift only the custom role is added; replacing a default
	// role with null removes it from the mapping but not from the seed's
	// bind rule, and a role mapped twice is named once.
	r = render(t, "--set", "roleMapping.admin=tenant-admin", "--set", "roleMapping.owner=tenant-admin", "--set", "roleMapping.view=null")
	r.get(t, "ClusterRole", "meshfed-service", &role)
	want := rbacv1.PolicyRule{APIGroups: []string{rbacv1.GroupName}, Resources: []string{"clusterroles"}, Verbs: []string{"bind"},
		ResourceNames: []string{"admin", "edit", "view", "tenant-admin"}}
	if got := role.Rules[len(role.Rules)-1]; !reflect.DeepEqual(got, want) {
		t.Errorf("bind rule:\n%s\nwant:\n%s", toYAML(got), toYAML(want))
	}
	r.get(t, "Deployment", "replicator", &d)
	opts = parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if got, want := opts.RoleMapping.String(), "admin=tenant-admin,edit=edit,owner=tenant-admin"; got != want {
		t.Errorf("--role-mapping %q, want %q", got, want)
	}
}

// permission is one thing an identity may do; Namespace is empty for a
// cluster-wide grant.
type permission struct{ Namespace, APIGroup, Resource, Verb, ResourceName string }

func expand(namespace string, rules []rbacv1.PolicyRule) []permission {
	var perms []permission
	for _, rule := range rules {
		names := rule.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, v := range rule.Verbs {
					for _, n := range names {
						perms = append(perms, permission{namespace, g, res, v, n})
					}
				}
			}
		}
	}
	return perms
}

// effective drops namespaced permissions a cluster-wide one already grants,
// sorted, so two sets of roles compare by what they allow.
func effective(perms []permission) []string {
	cluster := map[permission]bool{}
	for _, p := range perms {
		if p.Namespace == "" {
			cluster[p] = true
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range perms {
		if p.Namespace != "" {
			c := p
			c.Namespace = ""
			if cluster[c] {
				continue
			}
		}
		s := fmt.Sprintf("%s/%s/%s/%s/%s", p.Namespace, p.APIGroup, p.Resource, p.Verb, p.ResourceName)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// granted is what the chart's bindings give the ServiceAccount.
func (r rendered) granted(t *testing.T, sa string) []permission {
	t.Helper()
	subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: namespace}
	var perms []permission
	for _, u := range r {
		switch u.GetKind() {
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			r.get(t, "ClusterRoleBinding", u.GetName(), &b)
			if slices.Contains(b.Subjects, subject) {
				var role rbacv1.ClusterRole
				r.get(t, "ClusterRole", b.RoleRef.Name, &role)
				perms = append(perms, expand("", role.Rules)...)
			}
		case "RoleBinding":
			var b rbacv1.RoleBinding
			r.get(t, "RoleBinding", u.GetName(), &b)
			if !slices.Contains(b.Subjects, subject) {
				continue
			}
			if b.RoleRef.Kind == "ClusterRole" {
				var role rbacv1.ClusterRole
				r.get(t, "ClusterRole", b.RoleRef.Name, &role)
				perms = append(perms, expand(b.Namespace, role.Rules)...)
			} else {
				var role rbacv1.Role
				r.get(t, "Role", b.RoleRef.Name, &role)
				perms = append(perms, expand(b.Namespace, role.Rules)...)
			}
		}
	}
	return perms
}

// TestRBACIsTheGeneratedOne: per ServiceAccount, the chart grants exactly
// what controller-gen generates from the code's RBAC markers, no more and
// no less, so neither the code nor the chart can drift from the other. The
// landing-zone role is granted exactly when landingZones.enabled, the
// metering namespaces role exactly when metering.projectAttribution.enabled.
func TestRBACIsTheGeneratedOne(t *testing.T) {
	for _, c := range []struct {
		name  string
		args  []string
		sa    string
		files []string
	}{
		{"meshfed-service", nil, "meshfed-service",
			[]string{"config/rbac/replicator/role.yaml", "config/rbac/landingzones/role.yaml", "config/rbac/metrics-auth/role.yaml"}},
		{"meshfed-service without landing zones", []string{"--set", "landingZones.enabled=false"}, "meshfed-service",
			[]string{"config/rbac/replicator/role.yaml", "config/rbac/metrics-auth/role.yaml"}},
		{"meshfed-metering", nil, "meshfed-metering",
			[]string{"config/rbac/metering/role.yaml", "config/rbac/metering-namespaces/role.yaml", "config/rbac/metrics-auth/role.yaml"}},
		{"meshfed-metering without project attribution", []string{"--set", "metering.projectAttribution.enabled=false"}, "meshfed-metering",
			[]string{"config/rbac/metering/role.yaml", "config/rbac/metrics-auth/role.yaml"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c.args...)
			want := generatedPermissions(t, c.files...)
			got, wantEff := effective(r.granted(t, c.sa)), effective(want)
			if !slices.Equal(got, wantEff) {
				t.Errorf("the chart grants %s (namespace/group/resource/verb/name):\n  %s\n%v generate:\n  %s\n"+
					"only in the chart: %v\nonly generated: %v",
					c.sa, strings.Join(got, "\n  "), c.files, strings.Join(wantEff, "\n  "), minus(got, wantEff), minus(wantEff, got))
			}
		})
	}
}

// generatedPermissions are the permissions of the roles in files that
// controller-gen generated.
func generatedPermissions(t *testing.T, files ...string) []permission {
	t.Helper()
	var perms []permission
	for _, file := range files {
		objs, err := framework.ReadObjects(filepath.Join(framework.RepoRoot(), file))
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range objs {
			u := obj.(*unstructured.Unstructured)
			var role rbacv1.Role // a ClusterRole has the same rules field
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
				t.Fatal(err)
			}
			perms = append(perms, expand(u.GetNamespace(), role.Rules)...)
		}
	}
	return perms
}

// TestLandingZones: with landingZones.enabled=false no rendered role grants
// the landing-zone kinds; bindableClusterRoles join the guide's bind rule
// (only while enabled); defaultLandingZone becomes --default-landing-zone.
func TestLandingZones(t *testing.T) {
	baseline := map[string]bool{"resourcequotas": true, "limitranges": true, "networkpolicies": true, "meshlandingzones": true}
	r := render(t, "--set", "landingZones.enabled=false", "--set", "landingZones.bindableClusterRoles={my-reader}")
	for key, u := range r {
		if u.GetKind() != "ClusterRole" && u.GetKind() != "Role" {
			continue
		}
		var role rbacv1.Role
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
			t.Fatal(err)
		}
		for _, p := range expand("", role.Rules) {
			if baseline[strings.SplitN(p.Resource, "/", 2)[0]] || p.Resource == "*" || p.APIGroup == "*" || p.Verb == "*" {
				t.Errorf("with landingZones.enabled=false %s grants %+v", key, p)
			}
		}
	}
	bindNames := func(r rendered) []string {
		var role rbacv1.ClusterRole
		r.get(t, "ClusterRole", "meshfed-service", &role)
		return role.Rules[len(role.Rules)-1].ResourceNames
	}
	if got := bindNames(r); !slices.Equal(got, []string{"admin", "edit", "view"}) {
		t.Errorf("bind resourceNames %v without landing zones; want the guide's", got)
	}
	if _, ok := r["ClusterRole/meshstack-operator-landing-zones"]; ok {
		t.Errorf("the landing-zone ClusterRole is rendered with landingZones.enabled=false")
	}

	r = render(t, "--set", "landingZones.bindableClusterRoles={my-reader,view,tenant-admin}", "--set", "roleMapping.owner=tenant-admin",
		"--set", "landingZones.defaultLandingZone=standard")
	if got, want := bindNames(r), []string{"admin", "edit", "view", "my-reader", "tenant-admin"}; !slices.Equal(got, want) {
		t.Errorf("bind resourceNames %v, want %v", got, want)
	}
	var d appsv1.Deployment
	r.get(t, "Deployment", "replicator", &d)
	if got := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).DefaultLandingZone; got != "standard" {
		t.Errorf("--default-landing-zone %q, want standard", got)
	}
	r = render(t)
	r.get(t, "Deployment", "replicator", &d)
	if got := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).DefaultLandingZone; got != "" {
		t.Errorf("--default-landing-zone %q by default, want none", got)
	}
}

func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// parseArgs parses a container's args with the operator's own flags, as
// cmd/main.go does, and validates them.
func parseArgs(t *testing.T, args []string) operator.Options {
	t.Helper()
	fs := flag.NewFlagSet("meshstack-operator", flag.ContinueOnError)
	opts := operator.DefaultOptions()
	opts.BindFlags(fs)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("the operator rejects the chart's args %q: %v", args, err)
	}
	if fs.NArg() > 0 {
		t.Fatalf("the chart passes positional args %q", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		t.Fatalf("the operator rejects the chart's args %q: %v", args, err)
	}
	return opts
}

func TestDeployments(t *testing.T) {
	r := render(t,
		"--set", "logLevel=debug",
		"--set", "nodeSelector.pool=system",
		"--set", "metering.nodeSelector.pool=metering",
		"--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
		"--set", "replicator.replicas=2",
		"--set", "image.tag=v9.9.9")
	for _, c := range []deploymentCase{
		{"replicator", "meshfed-service", "system", func(t *testing.T, o operator.Options) {
			if o.RoleMapping.String() != "admin=admin,edit=edit,view=view" || o.UsernamePrefix != "mesh:" || o.GroupsPrefix != "" {
				t.Errorf("replicator flags: role mapping %q, prefixes %q %q", o.RoleMapping, o.UsernamePrefix, o.GroupsPrefix)
			}
		}},
		{"metering", "meshfed-metering", "metering", func(t *testing.T, o operator.Options) {
			if o.MeteringOutput != "-" || o.MeteringInterval.String() != "1m0s" || o.MeteringWindow.String() != "1h0m0s" ||
				o.MeteringPageSize != 500 {
				t.Errorf("metering flags: output %q, interval %s, window %s, page size %d",
					o.MeteringOutput, o.MeteringInterval, o.MeteringWindow, o.MeteringPageSize)
			}
		}},
	} {
		t.Run(c.component, func(t *testing.T) { checkDeployment(t, r, c) })
	}
	var d appsv1.Deployment
	r.get(t, "Deployment", "replicator", &d)
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicator replicas %d, want 2", *d.Spec.Replicas)
	}
	if _, ok := r["ServiceMonitor/meshstack-operator"]; ok {
		t.Errorf("a ServiceMonitor is rendered by default")
	}
	for _, s := range []string{"meshfed-service-token", "meshfed-metering-token"} {
		if _, ok := r["Secret/"+s]; ok {
			t.Errorf("Secret %s is rendered by default", s)
		}
	}
}

// deploymentCase is what differs between the two Deployments.
type deploymentCase struct {
	component, serviceAccount, nodePool string
	check                               func(t *testing.T, o operator.Options)
}

// checkDeployment checks a component's Deployment as TestDeployments
// renders it: namespace, ServiceAccount, image, arguments, probes, security
// context, resources, scheduling and its metrics Service.
func checkDeployment(t *testing.T, r rendered, c deploymentCase) {
	var d appsv1.Deployment
	r.get(t, "Deployment", c.component, &d)
	if d.Namespace != namespace {
		t.Errorf("namespace %q", d.Namespace)
	}
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != c.serviceAccount {
		t.Errorf("ServiceAccount %q, want %q", pod.ServiceAccountName, c.serviceAccount)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	ctr := pod.Containers[0]
	if ctr.Image != "ghcr.io/meshcloud/meshstack-operator:v9.9.9" {
		t.Errorf("image %q", ctr.Image)
	}
	opts := parseArgs(t, ctr.Args)
	if !slices.Equal(opts.Components, []string{c.component}) || !opts.LeaderElect || opts.LeaderElectionNS != namespace ||
		opts.MetricsBindAddress != ":8443" || !opts.MetricsSecure || opts.HealthProbeBindAddress != ":8081" {
		t.Errorf("args %q: components %v, leader election %v in %q, metrics %q, probes %q", ctr.Args,
			opts.Components, opts.LeaderElect, opts.LeaderElectionNS, opts.MetricsBindAddress, opts.HealthProbeBindAddress)
	}
	if !slices.Contains(ctr.Args, "--zap-log-level=debug") {
		t.Errorf("args %q lack the log level", ctr.Args)
	}
	c.check(t, opts)
	checkProbe(t, "liveness", ctr.LivenessProbe, "/healthz", ctr)
	checkProbe(t, "readiness", ctr.ReadinessProbe, "/readyz", ctr)
	checkRestricted(t, pod)
	if ctr.Resources.Requests.Cpu().IsZero() || ctr.Resources.Requests.Memory().IsZero() || ctr.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %v: want CPU and memory requests and a memory limit", ctr.Resources)
	}
	if pod.NodeSelector["pool"] != c.nodePool {
		t.Errorf("nodeSelector %v, want pool=%s", pod.NodeSelector, c.nodePool)
	}
	if len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "dedicated" {
		t.Errorf("tolerations %v", pod.Tolerations)
	}
	checkMetricsService(t, r, c.component, d)
}

// checkMetricsService checks that the component's metrics Service selects
// the Deployment's Pods and targets their metrics port.
func checkMetricsService(t *testing.T, r rendered, component string, d appsv1.Deployment) {
	t.Helper()
	var svc corev1.Service
	r.get(t, "Service", component+"-metrics", &svc)
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("metrics Service selector %v does not select the pods (labels %v)", svc.Spec.Selector, d.Spec.Template.Labels)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("metrics Service ports %v", svc.Spec.Ports)
	}
}

func checkProbe(t *testing.T, kind string, p *corev1.Probe, path string, ctr corev1.Container) {
	t.Helper()
	if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
		t.Errorf("%s probe %v, want an HTTP GET of %s", kind, p, path)
		return
	}
	for _, port := range ctr.Ports {
		if port.Name == p.HTTPGet.Port.StrVal && fmt.Sprintf(":%d", port.ContainerPort) == parseArgs(t, ctr.Args).HealthProbeBindAddress {
			return
		}
	}
	t.Errorf("%s probe port %v is not the --health-probe-bind-address port", kind, p.HTTPGet.Port)
}

// checkRestricted checks the Pod Security Standard "restricted" profile.
func checkRestricted(t *testing.T, pod corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	for _, ctr := range pod.Containers {
		sc := ctr.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s securityContext %+v: want no privilege escalation, "+
				"a read-only root filesystem and all capabilities dropped", ctr.Name, sc)
		}
	}
}

func TestMeteringFileOutput(t *testing.T) {
	r := render(t, "--set", "metering.output.persistence.enabled=true", "--set", "metering.output.persistence.storageClassName=fast")
	var d appsv1.Deployment
	r.get(t, "Deployment", "metering", &d)
	opts := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if opts.MeteringOutput != "/var/lib/meshstack-metering/usage.jsonl" {
		t.Errorf("--metering-output %q", opts.MeteringOutput)
	}
	var pvc corev1.PersistentVolumeClaim
	r.get(t, "PersistentVolumeClaim", "metering", &pvc)
	if pvc.Annotations["helm.sh/resource-policy"] != "keep" || *pvc.Spec.StorageClassName != "fast" ||
		pvc.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("claim %+v", pvc)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != pvc.Name ||
		len(pod.Containers[0].VolumeMounts) != 1 || pod.Containers[0].VolumeMounts[0].MountPath != "/var/lib/meshstack-metering" {
		t.Errorf("volumes %v, mounts %v", pod.Volumes, pod.Containers[0].VolumeMounts)
	}

	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q: a new Pod cannot mount the old one's ReadWriteOnce claim, want Recreate", d.Spec.Strategy.Type)
	}

	r = render(t, "--set", "metering.output.persistence.enabled=true", "--set", "metering.output.persistence.existingClaim=usage",
		"--set", "metering.output.persistence.accessModes={ReadWriteMany}", "--set", "metering.replicas=2")
	if _, ok := r["PersistentVolumeClaim/metering"]; ok {
		t.Errorf("a claim is rendered although existingClaim is set")
	}
	r.get(t, "Deployment", "metering", &d)
	if d.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ClaimName != "usage" {
		t.Errorf("volumes %v, want claim usage", d.Spec.Template.Spec.Volumes)
	}
	if d.Spec.Strategy.Type != "" {
		t.Errorf("strategy %q with a ReadWriteMany claim, want the default rolling update", d.Spec.Strategy.Type)
	}
}

func TestServiceMonitorAndTokenSecrets(t *testing.T) {
	r := render(t, "--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=prometheus",
		"--set", "tokenSecrets.enabled=true")
	sm, ok := r["ServiceMonitor/meshstack-operator"]
	if !ok {
		t.Fatalf("no ServiceMonitor; rendered %v", r.keys())
	}
	if sm.GetAPIVersion() != "monitoring.coreos.com/v1" || sm.GetLabels()["release"] != "prometheus" {
		t.Errorf("ServiceMonitor %s with labels %v", sm.GetAPIVersion(), sm.GetLabels())
	}
	selector, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
	for _, component := range []string{"replicator", "metering"} {
		var svc corev1.Service
		r.get(t, "Service", component+"-metrics", &svc)
		for k, v := range selector {
			if svc.Labels[k] != v {
				t.Errorf("ServiceMonitor selector %v does not select Service %s (labels %v)", selector, svc.Name, svc.Labels)
			}
		}
	}
	for _, sa := range []string{"meshfed-service", "meshfed-metering"} {
		var s corev1.Secret
		r.get(t, "Secret", sa+"-token", &s)
		if s.Type != corev1.SecretTypeServiceAccountToken || s.Annotations[corev1.ServiceAccountNameKey] != sa || s.Namespace != namespace {
			t.Errorf("Secret %s: type %s, annotations %v, namespace %s", s.Name, s.Type, s.Annotations, s.Namespace)
		}
	}
}

func toYAML(v any) string {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// TestValuesTable: the chart README's values table documents every value,
// and nothing that is not a value.
func TestValuesTable(t *testing.T) {
	values, readme := chartValuesAndReadme(t)
	// Objects passed to Kubernetes as a whole are documented as one value.
	whole := map[string]bool{"roleMapping": true, "resources": true, "podSecurityContext": true, "securityContext": true,
		"labels": true}
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !whole[k] {
				walk(prefix+k+".", sub)
				continue
			}
			keys = append(keys, prefix+k)
		}
	}
	walk("", values)
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	for _, k := range keys {
		if !documented[k] {
			t.Errorf("value %s is not in the README's values table", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("the README's values table documents %s, which values.yaml does not have", k)
	}
}

// chartValuesAndReadme reads the chart's values.yaml and README.md.
func chartValuesAndReadme(t *testing.T) (map[string]any, []byte) {
	t.Helper()
	chart := filepath.Join(framework.RepoRoot(), framework.ChartDir)
	data, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := utilyaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return values, readme
}

// TestValuesTableDefaults checks the Default column of the chart README's
// values table against values.yaml wherever the column gives a literal (one
// code span), so the one table of values cannot claim a default the chart
// does not have. Defaults given in words (resources, security contexts)
// are left to the reader.
func TestValuesTableDefaults(t *testing.T) {
	values, readme := chartValuesAndReadme(t)
	checked := 0
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `([^`]*)` \\|").FindAllStringSubmatch(string(readme), -1) {
		key, documented := m[1], m[2]
		value, ok := lookupValue(values, key)
		if !ok {
			continue // TestValuesTable reports keys values.yaml lacks
		}
		if got := renderDefault(value); got != documented {
			t.Errorf("the README's values table gives %s the default `%s`; values.yaml has `%s`", key, documented, got)
		}
		checked++
	}
	if checked < 50 {
		t.Errorf("checked the defaults of only %d values; did the table's layout change?", checked)
	}
}

// lookupValue finds a dotted key in values.
func lookupValue(values map[string]any, key string) (any, bool) {
	var v any = values
	for _, part := range strings.Split(key, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// renderDefault writes a value as the README's table does: strings bare
// ("" when empty), lists and maps in YAML flow style, a string that would
// read as another type quoted.
func renderDefault(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if v == "" {
			return `""`
		}
		return v
	case []any:
		items := make([]string, len(v))
		for i, item := range v {
			items[i] = renderFlowItem(item)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v))
		items := make([]string, len(keys))
		for i, k := range keys {
			items[i] = k + ": " + renderFlowItem(v[k])
		}
		return "{" + strings.Join(items, ", ") + "}"
	default:
		return fmt.Sprint(v)
	}
}

// renderFlowItem quotes a string inside a list or map that YAML would read
// as a number or a boolean.
func renderFlowItem(v any) string {
	if s, ok := v.(string); ok {
		var parsed any
		if err := json.Unmarshal([]byte(s), &parsed); err == nil {
			if _, isString := parsed.(string); !isString {
				return fmt.Sprintf("%q", s)
			}
		}
	}
	return renderDefault(v)
}

func TestNames(t *testing.T) {
	var d appsv1.Deployment
	// The issue names the Deployments replicator and metering.
	r := render(t)
	r.get(t, "Deployment", "replicator", &d)
	r.get(t, "Deployment", "metering", &d)

	r = render(t, "--set", "namePrefix=tenants", "--set", "metering.output.persistence.enabled=true")
	r.get(t, "Deployment", "tenants-replicator", &d)
	r.get(t, "Deployment", "tenants-metering", &d)
	var svc corev1.Service
	r.get(t, "Service", "tenants-metering-metrics", &svc)
	var pvc corev1.PersistentVolumeClaim
	r.get(t, "PersistentVolumeClaim", "tenants-metering", &pvc)
	// The meshStack accounts keep their documented names.
	var sa corev1.ServiceAccount
	r.get(t, "ServiceAccount", "meshfed-service", &sa)
	r.get(t, "ServiceAccount", "meshfed-metering", &sa)
}

func TestMeteringCheckpointStorageAndHTTP(t *testing.T) {
	t.Run("the default: a checkpoint, pods only, stdout", meteringCheckpointDefault)
	t.Run("without a checkpoint no Role grants ConfigMaps", meteringWithoutCheckpoint)
	t.Run("more parts are more resourceNames in the Role and the admission policy", meteringCheckpointParts)
	t.Run("storage metering: its own ClusterRole and the flag", meteringStorage)
	t.Run("an HTTP receiver with files from extra volumes, two replicas rolling, a cluster name", meteringHTTPReceiver)
}

// meteringCheckpointDefault: by default the meter keeps a checkpoint, meters
// pods only and writes to stdout.
func meteringCheckpointDefault(t *testing.T) {
	r := render(t)
	var d appsv1.Deployment
	r.get(t, "Deployment", "metering", &d)
	o := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if o.MeteringCheckpoint != "meshstack-metering" || o.MeteringCheckpointParts != 8 ||
		!slices.Equal(o.MeteringResources, []string{"pods"}) || o.MeteringOutput != "-" {
		t.Errorf("checkpoint %q in %d parts, resources %v, output %q",
			o.MeteringCheckpoint, o.MeteringCheckpointParts, o.MeteringResources, o.MeteringOutput)
	}
	// No cluster by default: the record ids of earlier releases.
	for _, arg := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(arg, "--metering-cluster") {
			t.Errorf("rendered %q by default", arg)
		}
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("without a volume two replicas can overlap: want a rolling update, got Recreate")
	}
	if _, ok := r["ClusterRole/meshstack-operator-metering-storage"]; ok {
		t.Errorf("the storage ClusterRole is rendered by default")
	}
}

// meteringWithoutCheckpoint: without a checkpoint no Role grants ConfigMaps.
func meteringWithoutCheckpoint(t *testing.T) {
	r := render(t, "--set", "metering.checkpoint.enabled=false")
	var d appsv1.Deployment
	r.get(t, "Deployment", "metering", &d)
	if o := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args); o.MeteringCheckpoint != "" {
		t.Errorf("--metering-checkpoint=%q, want empty", o.MeteringCheckpoint)
	}
	for _, p := range r.granted(t, "meshfed-metering") {
		if p.Resource == "configmaps" {
			t.Errorf("granted %+v", p)
		}
	}
}

// meteringCheckpointParts: more parts are more resourceNames in the Role
// and the admission policy.
func meteringCheckpointParts(t *testing.T) {
	r := render(t, append([]string{"--set", "metering.checkpoint.name=usage-checkpoint", "--set", "metering.checkpoint.parts=2"},
		vapAPI...)...)
	var role rbacv1.Role
	r.get(t, "Role", "meshstack-operator-metering-checkpoint", &role)
	want := []string{"usage-checkpoint", "usage-checkpoint-a-1", "usage-checkpoint-a-2", "usage-checkpoint-b-1", "usage-checkpoint-b-2"}
	if !slices.Equal(role.Rules[0].ResourceNames, want) ||
		!slices.Equal(role.Rules[0].Verbs, []string{"get", "update"}) {
		t.Errorf("resourceNames %v verbs %v, want get and update of %v", role.Rules[0].ResourceNames, role.Rules[0].Verbs, want)
	}
	// The part of the layout before generations is only read.
	if !slices.Equal(role.Rules[1].ResourceNames, []string{"usage-checkpoint-1"}) || !slices.Equal(role.Rules[1].Verbs, []string{"get"}) {
		t.Errorf("resourceNames %v verbs %v, want get of usage-checkpoint-1", role.Rules[1].ResourceNames, role.Rules[1].Verbs)
	}
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	r.get(t, "ValidatingAdmissionPolicy", "meshstack-operator-metering-checkpoint", &policy)
	if got, want := policy.Spec.MatchConditions[0].Expression,
		"['usage-checkpoint', 'usage-checkpoint-a-1', 'usage-checkpoint-a-2', 'usage-checkpoint-b-1', 'usage-checkpoint-b-2', "+
			"'usage-checkpoint-1']"; !strings.HasSuffix(got, " in "+want) {
		t.Errorf("the checkpoint policy matches %q, want every name: %s", got, want)
	}
}

// meteringStorage: storage metering has its own ClusterRole and the flag.
func meteringStorage(t *testing.T) {
	r := render(t, "--set", "metering.persistentVolumeClaims.enabled=true")
	var role rbacv1.ClusterRole
	r.get(t, "ClusterRole", "meshstack-operator-metering-storage", &role)
	want := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"persistentvolumeclaims"}, Verbs: []string{"get", "list"}}}
	if !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("rules %+v, want %+v", role.Rules, want)
	}
	granted := effective(r.granted(t, "meshfed-metering"))
	for _, verb := range []string{"get", "list"} {
		if !slices.Contains(granted, "//persistentvolumeclaims/"+verb+"/") {
			t.Errorf("meshfed-metering may not %s claims: %v", verb, granted)
		}
	}
	var seed rbacv1.ClusterRole
	r.get(t, "ClusterRole", "meshfed-metering", &seed)
	if len(seed.Rules) != 1 || seed.Rules[0].Resources[0] != "pods" {
		t.Errorf("the seed's meshfed-metering changed: %+v", seed.Rules)
	}
	var d appsv1.Deployment
	r.get(t, "Deployment", "metering", &d)
	o := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if !slices.Equal(o.MeteringResources, []string{"pods", "persistentvolumeclaims"}) {
		t.Errorf("--metering-resources %v", o.MeteringResources)
	}
}

// meteringHTTPReceiver: an HTTP receiver with files from extra volumes, two
// replicas rolling, a cluster name.
func meteringHTTPReceiver(t *testing.T) {
	r := render(t, "--set", "metering.output.http.url=https://billing.example.com/usage", "--set", "metering.output.http.batchSize=200",
		"--set", "metering.output.http.caFile=/etc/billing/ca.crt", "--set", "metering.output.http.bearerTokenFile=/var/run/billing/token",
		"--set", "metering.extraVolumes[0].name=billing,metering.extraVolumes[0].secret.secretName=billing",
		"--set", "metering.extraVolumeMounts[0].name=billing,metering.extraVolumeMounts[0].mountPath=/etc/billing",
		"--set", "metering.replicas=2", "--set", "metering.cluster=eu-1")
	var d appsv1.Deployment
	r.get(t, "Deployment", "metering", &d)
	o := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
	if o.MeteringCluster != "eu-1" {
		t.Errorf("--metering-cluster %q, want eu-1", o.MeteringCluster)
	}
	if o.MeteringOutput != "https://billing.example.com/usage" || o.MeteringHTTP.BatchSize != 200 ||
		o.MeteringHTTP.CAFile != "/etc/billing/ca.crt" || o.MeteringHTTP.BearerTokenFile != "/var/run/billing/token" ||
		o.MeteringHTTP.ClientCertFile != "" {
		t.Errorf("HTTP options: output %q, %+v", o.MeteringOutput, o.MeteringHTTP)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Volumes) != 1 || pod.Volumes[0].Secret == nil || len(pod.Containers[0].VolumeMounts) != 1 {
		t.Errorf("volumes %+v, mounts %+v", pod.Volumes, pod.Containers[0].VolumeMounts)
	}
	if *d.Spec.Replicas != 2 || d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Errorf("replicas %d, strategy %q", *d.Spec.Replicas, d.Spec.Strategy.Type)
	}
}

func TestAuthenticatedMetrics(t *testing.T) {
	t.Run("by default over HTTPS, with the review rights in their own role and a reader role", func(t *testing.T) {
		r := render(t, "--set", "serviceMonitor.enabled=true",
			"--set", "metrics.readerSubjects[0].kind=ServiceAccount,metrics.readerSubjects[0].name=prometheus,"+
				"metrics.readerSubjects[0].namespace=monitoring")
		var reader rbacv1.ClusterRole
		r.get(t, "ClusterRole", "meshstack-operator-metrics-reader", &reader)
		if want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}; !reflect.DeepEqual(reader.Rules, want) {
			t.Errorf("reader rules %+v", reader.Rules)
		}
		var binding rbacv1.ClusterRoleBinding
		r.get(t, "ClusterRoleBinding", "meshstack-operator-metrics-reader", &binding)
		if len(binding.Subjects) != 1 || binding.Subjects[0].Name != "prometheus" || binding.RoleRef.Name != reader.Name {
			t.Errorf("reader binding %+v", binding)
		}
		var d appsv1.Deployment
		r.get(t, "Deployment", "replicator", &d)
		if d.Spec.Template.Spec.Containers[0].Ports[0].ContainerPort != 8443 {
			t.Errorf("metrics port %v", d.Spec.Template.Spec.Containers[0].Ports)
		}
		sm := r["ServiceMonitor/meshstack-operator"]
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		ep := endpoints[0].(map[string]any)
		if ep["scheme"] != "https" || ep["bearerTokenFile"] != "/var/run/secrets/kubernetes.io/serviceaccount/token" {
			t.Errorf("ServiceMonitor endpoint %v", ep)
		}
	})

	t.Run("a certificate from a Secret", func(t *testing.T) {
		r := render(t, "--set", "metrics.certSecretName=metrics-tls")
		var d appsv1.Deployment
		r.get(t, "Deployment", "metering", &d)
		pod := d.Spec.Template.Spec
		if o := parseArgs(t, pod.Containers[0].Args); o.MetricsCertDir != "/var/run/metrics-certs" {
			t.Errorf("--metrics-cert-dir %q", o.MetricsCertDir)
		}
		found := false
		for _, v := range pod.Volumes {
			found = found || v.Secret != nil && v.Secret.SecretName == "metrics-tls"
		}
		if !found {
			t.Errorf("no volume of Secret metrics-tls: %+v", pod.Volumes)
		}
	})

	t.Run("plain HTTP on request, and then no review rights", func(t *testing.T) {
		r := render(t, "--set", "metrics.secure=false", "--set", "metrics.service.port=8080")
		for _, key := range []string{"ClusterRole/meshstack-operator-metrics-auth", "ClusterRole/meshstack-operator-metrics-reader"} {
			if _, ok := r[key]; ok {
				t.Errorf("%s rendered with metrics.secure=false", key)
			}
		}
		var d appsv1.Deployment
		r.get(t, "Deployment", "replicator", &d)
		o := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
		if o.MetricsSecure || o.MetricsBindAddress != ":8080" {
			t.Errorf("--metrics-secure=%v on %q", o.MetricsSecure, o.MetricsBindAddress)
		}
		for _, sa := range []string{"meshfed-service", "meshfed-metering"} {
			for _, p := range r.granted(t, sa) {
				if p.Resource == "tokenreviews" || p.Resource == "subjectaccessreviews" {
					t.Errorf("%s may %s %s", sa, p.Verb, p.Resource)
				}
			}
		}
	})
}

// vapAPI makes helm template render as for a cluster that serves
// ValidatingAdmissionPolicy (helm install asks the cluster itself).
var vapAPI = []string{"--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"}

func TestAdmissionPolicies(t *testing.T) {
	policies := []string{"meshstack-operator-meshprojects", "meshstack-operator-meshprojects-landing-zones",
		"meshstack-operator-managed-objects", "meshstack-operator-managed-subresources", "meshstack-operator-operator-scope"}
	has := func(r rendered, name string) bool {
		_, policy := r["ValidatingAdmissionPolicy/"+name]
		_, binding := r["ValidatingAdmissionPolicyBinding/"+name]
		if policy != binding {
			t.Errorf("%s: policy rendered %v, binding rendered %v", name, policy, binding)
		}
		return policy
	}
	for _, c := range []struct {
		name string
		args []string
		want []bool
	}{
		{"on a cluster that serves them", vapAPI, []bool{true, true, true, true, true}},
		{"not where the API is missing", nil, []bool{false, false, false, false, false}},
		{"not when disabled", append([]string{"--set", "admissionPolicies.enabled=false"}, vapAPI...), []bool{false, false, false, false, false}},
		{"no zone policy without landing zones", append([]string{"--set", "landingZones.enabled=false"}, vapAPI...),
			[]bool{true, false, true, true, true}},
		{"no subresource policy when switched off", append([]string{"--set", "admissionPolicies.managedSubresources.enabled=false"}, vapAPI...),
			[]bool{true, true, true, false, true}},
		{"no operator scope when switched off", append([]string{"--set", "admissionPolicies.operatorScope.enabled=false"}, vapAPI...),
			[]bool{true, true, true, true, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, c.args...)
			for i, name := range policies {
				if got := has(r, name); got != c.want[i] {
					t.Errorf("%s rendered: %v, want %v", name, got, c.want[i])
				}
			}
		})
	}

	t.Run("the policies use the chart's one role mapping, reserved identifiers and break-glass groups", func(t *testing.T) {
		r := render(t, append([]string{"--set", "roleMapping.auditor=my-auditor", "--set", "roleMapping.edit=null",
			"--set", "admissionPolicies.reservedCustomerIdentifiers={kube,platform}",
			"--set", "admissionPolicies.breakGlassGroups={sre}"}, vapAPI...)...)
		var d appsv1.Deployment
		r.get(t, "Deployment", "replicator", &d)
		mapping := parseArgs(t, d.Spec.Template.Spec.Containers[0].Args).RoleMapping.String()
		if mapping != "admin=admin,auditor=my-auditor,view=view" {
			t.Fatalf("--role-mapping=%s", mapping)
		}
		for name, want := range map[string][]string{
			"meshstack-operator-meshprojects":               {`['admin', 'auditor', 'view']`, `['kube', 'platform']`},
			"meshstack-operator-meshprojects-landing-zones": {`['admin', 'auditor', 'view']`},
			"meshstack-operator-managed-objects":            {`['sre']`, "system:serviceaccount:meshcloud:meshfed-service"},
			"meshstack-operator-managed-subresources":       {`['sre']`, "system:serviceaccount:meshcloud:meshfed-service"},
			"meshstack-operator-operator-scope":             {"system:serviceaccount:meshcloud:meshfed-service"},
		} {
			out, err := json.Marshal(r["ValidatingAdmissionPolicy/"+name].Object)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					t.Errorf("%s does not contain %s", name, w)
				}
			}
		}
	})
}

// TestLeaderElectionTimings: the leaderElection values reach both
// Deployments as flags the operator accepts, controller-runtime's defaults
// unless set (TestHelmRejectsBadValues refuses malformed ones).
func TestLeaderElectionTimings(t *testing.T) {
	timings := func(o operator.Options) string {
		return fmt.Sprintf("%s/%s/%s", o.LeaderElectionLeaseDuration, o.LeaderElectionRenewDeadline, o.LeaderElectionRetryPeriod)
	}
	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"defaults": {nil, "15s/10s/2s"},
		"set": {[]string{"--set", "leaderElection.leaseDuration=30s", "--set", "leaderElection.renewDeadline=20s",
			"--set", "leaderElection.retryPeriod=4s"}, "30s/20s/4s"},
	} {
		t.Run(name, func(t *testing.T) {
			r := render(t, c.args...)
			for _, component := range []string{"replicator", "metering"} {
				var d appsv1.Deployment
				r.get(t, "Deployment", component, &d)
				if got := timings(parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)); got != c.want {
					t.Errorf("%s: lease/renew/retry %s, want %s", component, got, c.want)
				}
			}
		})
	}
}
