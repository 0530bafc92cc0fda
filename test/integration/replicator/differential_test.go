package replicator_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The differential test sends MeshProjects made at random, valid and
// invalid, to the API server, whose schema and CEL decide which exist. For
// each one that exists, an oracle written from the documented behaviour
// (the table of Ready reasons in docs/replicator.md) says how it must end up, and the
// test compares that with what the operator makes of it:
//
//   - Ready=True, or Ready=False with the reason of the first problem the
//     spec explains, in the order a pass meets them (landing zone, then
//     namespace, then each role in spec order, then the quota), and a
//     message that names every problem: LandingZoneNotFound,
//     LandingZoneDisabled (both without a namespace), NamespaceConflict (identifiers of a namespace
//     that another project, or nobody the operator knows, has),
//     UnknownRole, RoleBindingNameClash, ClusterRoleNotFound,
//     QuotaAboveMaximum, ResourceQuotaInvalid (a quota the schema accepts
//     but a ResourceQuota may not have). ReconcileFailed, a transient
//     error, is never explained by a spec and always fails the test;
//   - the namespace and RoleBindings of each project that owns its
//     namespace match the spec;
//   - soon after, the operator is quiet: two seconds without a write;
//   - no reconcile panicked (controller-runtime recovers and counts them)
//     and the manager still runs;
//   - every write went into the namespace of a project that owns it, to a
//     MeshProject of the batch or its status (or a project or zone an
//     earlier spec left, which the shared manager may still work on), to
//     a landing zone the batch
//     uses, or was an Event (in default, MeshProjects being cluster-scoped)
//     or a Lease in meshcloud.
//
// The seed is printed; MESHPROJECT_FUZZ_SEED=<seed> replays a run.
const (
	differentialSeedEnv = "MESHPROJECT_FUZZ_SEED"
	differentialCount   = 100
)

var _ = Describe("Random MeshProjects", Serial, func() {
	It("converge when the API server accepts them, for the reason their spec explains, and the operator writes nowhere else", func() {
		seed := uint64(time.Now().UnixNano())
		if s := os.Getenv(differentialSeedEnv); s != "" {
			var err error
			seed, err = strconv.ParseUint(s, 10, 64)
			Expect(err).NotTo(HaveOccurred(), differentialSeedEnv)
		}
		replay := fmt.Sprintf("seed %d (replay with %s=%d)", seed, differentialSeedEnv, seed)
		GinkgoWriter.Println("Random MeshProjects:", replay)
		AddReportEntry("seed", replay)

		ensureClusterRole("lz-secret-reader", readSecrets)
		// A zone whose roles admin and admin-view both want RoleBinding
		// meshproject-admin-view.
		zone := aZone().mapping("admin", "admin", "view").mapping("admin-view", "view").
			mapping("reader", "view", "lz-secret-reader").mapping("edit", "edit").
			podSecurity("baseline").hard("pods", "20", "requests.cpu", "4").maxQuota("requests.cpu", "8", "pods", "50").
			containerDefaults("500m", "512Mi", "100m", "128Mi").policy("deny-ingress", denyIngress).create()
		closed := aZone().build()
		closed.Spec.Disabled = true
		Expect(fw.Client.Create(ctx, closed)).To(Succeed())

		err := fw.Client.Get(ctx, client.ObjectKey{Name: customClusterRole}, &rbacv1.ClusterRole{})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
		o := &oracle{zone: zone, closed: closed.Name, auditorExists: err == nil}

		// Projects and zones of earlier specs that the shared manager still
		// works on (a retry, a ClusterRole that appeared, the finalizer and
		// project count as their cleanup ends) may still be written.
		earlier := map[string]bool{}
		var earlierProjects meshv1.MeshProjectList
		Expect(fw.Client.List(ctx, &earlierProjects)).To(Succeed())
		for _, p := range earlierProjects.Items {
			earlier["meshprojects/"+p.Name] = true
		}
		var earlierZones meshv1.MeshLandingZoneList
		Expect(fw.Client.List(ctx, &earlierZones)).To(Succeed())
		for _, z := range earlierZones.Items {
			earlier["meshlandingzones/"+z.Name] = true
		}

		mgr := running
		panicsBefore := reconcilePanics()
		writesBefore := mgr.WritesByPath()

		gen := &projectGen{rng: rand.New(rand.NewPCG(seed, 0x5eed)),
			run:   fmt.Sprintf("fz%d", time.Now().UnixNano()%1000000+int64(projectSeq.Add(1))*1000000),
			zones: []string{zone.Name, closed.Name, "nozone-" + fmt.Sprint(seed%100000)}}
		var accepted []*meshv1.MeshProject
		preexisting := map[string]*corev1.Namespace{}
		rejected := map[string]int{}
		for i := range differentialCount {
			p := gen.project(i)
			ns := &corev1.Namespace{}
			if err := fw.Client.Get(ctx, client.ObjectKey{Name: p.NamespaceName()}, ns); err == nil {
				preexisting[ns.Name] = ns
			}
			err := fw.Client.Create(ctx, p)
			if err != nil {
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: creating %s: %v, want accepted or Invalid", replay, describe(p), err)
				rejected[firstCause(err)]++
				continue
			}
			accepted = append(accepted, p)
		}
		GinkgoWriter.Printf("%d of %d MeshProjects accepted; refused by field: %v\n", len(accepted), differentialCount, rejected)
		Expect(len(accepted)).To(BeNumerically(">=", differentialCount/4), "%s: too few accepted to say much", replay)
		DeferCleanup(func() { deleteAndWait(accepted, zone, closed) })

		// Converged as the oracle says.
		namespaces := map[string][]*meshv1.MeshProject{}
		for _, p := range accepted {
			namespaces[p.NamespaceName()] = append(namespaces[p.NamespaceName()], p)
		}
		owners := map[string]string{} // namespace: the project that owns it
		Eventually(func(g Gomega) {
			for name, group := range namespaces {
				if old, ok := preexisting[name]; ok && old.Annotations[meshv1.AnnotationMeshProject] == "" {
					continue // nobody of the batch may take it
				}
				if !slices.ContainsFunc(group, o.getsNamespace) {
					continue // every project that wants it waits for its zone
				}
				ns := getNamespace(g, name)
				owner := ns.Annotations[meshv1.AnnotationMeshProject]
				g.Expect(slices.ContainsFunc(group, func(p *meshv1.MeshProject) bool { return p.Name == owner })).To(BeTrue(),
					"namespace %s belongs to %q, none of %d projects that want it", name, owner, len(group))
				owners[name] = owner
			}
			for _, p := range accepted {
				want := o.expect(p, owners[p.NamespaceName()] == p.Name)
				cond := readyCondition(g, p)
				if len(want) == 0 {
					g.Expect(cond.Status).To(Equal(metav1.ConditionTrue), "%s: %s: %s: %s", replay, describe(p), cond.Reason, cond.Message)
					continue
				}
				g.Expect(cond.Status).To(Equal(metav1.ConditionFalse), "%s: %s, want %v", replay, describe(p), want)
				g.Expect(cond.Reason).To(Equal(want[0].reason), "%s: %s: %s; want the problems %v", replay, describe(p), cond.Message, want)
				for _, w := range want {
					g.Expect(cond.Message).To(ContainSubstring(w.message), "%s: %s", replay, describe(p))
				}
			}
		}, framework.SlowTimeout, 200*time.Millisecond).Should(Succeed())

		outcomes := map[string]int{}
		for _, p := range accepted {
			want := o.expect(p, owners[p.NamespaceName()] == p.Name)
			if len(want) == 0 {
				outcomes["Ready"]++
			}
			for _, w := range want {
				outcomes[w.reason]++
			}
			if owners[p.NamespaceName()] == p.Name {
				o.expectObjects(p, replay)
			}
		}
		GinkgoWriter.Printf("Outcomes (Ready, or the problems they report): %v\n", outcomes)

		// Quiet soon after: nothing left that writes again and again (the
		// landing zones' status may still count the last projects).
		// The writes stop: one polling interval passes without any...
		previous := mgr.WritesByPath()
		Eventually(func() map[string]int {
			current := mgr.WritesByPath()
			since := writesSince(previous, current)
			previous = current
			return since
		}, framework.Timeout, 500*time.Millisecond).Should(BeEmpty(), "%s: the operator keeps writing", replay)
		// ...and stay stopped over a window (2s, the window the check always had).
		quiet := mgr.WritesByPath()
		Consistently(func() map[string]int {
			return writesSince(quiet, mgr.WritesByPath())
		}, 2*time.Second, 100*time.Millisecond).Should(BeEmpty(), "%s: the operator writes again after a quiet spell", replay)

		// Alive, and no reconcile panicked.
		Expect(mgr.Exited()).NotTo(BeClosed(), replay)
		Expect(reconcilePanics()).To(Equal(panicsBefore), "%s: a reconcile panicked; see the log", replay)

		// Writes only where the batch may write.
		batch := map[string]bool{}
		for _, p := range accepted {
			batch[p.Name] = true
		}
		for write, n := range writesSince(writesBefore, mgr.WritesByPath()) {
			Expect(allowedWrite(write, batch, earlier, owners, zone.Name, closed.Name)).To(BeTrue(),
				"%s: %d× %s is outside the projects' namespaces", replay, n, write)
		}
		for name, old := range preexisting {
			ns := getNamespace(Default, name)
			Expect(ns.Annotations[meshv1.AnnotationMeshProject]).To(Equal(old.Annotations[meshv1.AnnotationMeshProject]),
				"%s: namespace %s changed hands", replay, name)
		}
	})
})

// projectGen makes MeshProjects at random: mostly valid values, and with
// some probability each field a value the schema or CEL refuses, a value
// it accepts that the operator must refuse to act on, or a value that
// collides with another project or with a namespace the operator does
// not own.
type projectGen struct {
	rng *rand.Rand
	// run makes the valid identifiers unique to this run.
	run   string
	zones []string
	// used are identifiers generated so far, to collide with.
	used [][2]string
}

func (g *projectGen) chance(p float64) bool { return g.rng.Float64() < p }

func pick[T any](g *projectGen, from ...T) T { return from[g.rng.IntN(len(from))] }

func (g *projectGen) alnum(min, max int) string {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, min+g.rng.IntN(max-min+1))
	for i := range b {
		b[i] = chars[g.rng.IntN(len(chars))]
	}
	return string(b)
}

// spoil makes s an identifier the schema refuses, now and then.
func (g *projectGen) spoil(s string) string {
	if !g.chance(0.06) {
		return s
	}
	switch g.rng.IntN(6) {
	case 0:
		return strings.ToUpper(s[:1]) + s[1:]
	case 1:
		return s + "-x"
	case 2:
		return s + "_x"
	case 3:
		return ""
	case 4:
		return s + strings.Repeat("z", 63-len(s)) // 63 characters
	default:
		return s + "ü"
	}
}

func (g *projectGen) project(i int) *meshv1.MeshProject {
	customer, project := g.spoil(g.run+g.alnum(0, 4)), g.spoil(g.alnum(1, 10))
	switch {
	case g.chance(0.04):
		customer, project = "kube", pick(g, "system", "public")
	case g.chance(0.06) && len(g.used) > 0:
		ids := pick(g, g.used...)
		customer, project = ids[0], ids[1]
	case g.chance(0.03):
		project = g.alnum(40, 55) // together over 62 characters, mostly
	}
	g.used = append(g.used, [2]string{customer, project})
	p := &meshv1.MeshProject{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", g.run, i)},
		Spec: meshv1.MeshProjectSpec{
			CustomerIdentifier: meshv1.Identifier(customer), ProjectIdentifier: meshv1.Identifier(project),
			DeletionPolicy: pick(g, "", meshv1.DeletionPolicyDelete, meshv1.DeletionPolicyDelete, meshv1.DeletionPolicyRetain),
		},
	}
	if g.chance(0.02) {
		p.Name = fmt.Sprintf("Fz_%d", i)
	}
	if g.chance(0.02) {
		p.Spec.DeletionPolicy = "Keep"
	}
	roles := []string{"admin", "edit", "view", "auditor", "reader", "admin-view", "owner"}
	g.rng.Shuffle(len(roles), func(i, j int) { roles[i], roles[j] = roles[j], roles[i] })
	for _, role := range roles[:g.rng.IntN(5)] {
		b := meshv1.ProjectRoleBinding{Role: role}
		if g.chance(0.03) {
			b.Role = pick(g, "Admin", "-x", "a_b", strings.Repeat("r", 64), "")
		}
		b.Users = g.subjects(g.rng.IntN(4), "alice", "bob@example.com", "CN=Jane Doe,O=Org", "ünïcödé", "mesh:eve", "u"+g.alnum(1, 8))
		b.Groups = g.subjects(g.rng.IntN(3), "devs", "acme-admins", "tem:masters", "g"+g.alnum(1, 8))
		p.Spec.RoleBindings = append(p.Spec.RoleBindings, b)
	}
	if g.chance(0.03) && len(p.Spec.RoleBindings) > 0 {
		p.Spec.RoleBindings = append(p.Spec.RoleBindings, p.Spec.RoleBindings[0]) // a role twice
	}
	for range g.rng.IntN(4) {
		if p.Spec.Tags == nil {
			p.Spec.Tags = map[string]meshv1.TagValue{}
		}
		key := pick(g, "env", "cost-center", "a.b_c", "Team", "k"+g.alnum(1, 6))
		value := pick(g, "prod", "", "A-1", "v"+g.alnum(0, 10))
		if g.chance(0.04) {
			key = pick(g, "-bad", "bad-", strings.Repeat("k", 64), "with space", "a/b")
		}
		if g.chance(0.04) {
			value = pick(g, "x y", strings.Repeat("v", 64), "-v", "ü")
		}
		p.Spec.Tags[key] = meshv1.TagValue(value)
	}
	switch {
	case g.chance(0.45):
	case g.chance(0.7):
		p.Spec.LandingZone = g.zones[0]
	case g.chance(0.85):
		p.Spec.LandingZone = pick(g, g.zones[1:]...)
	case g.chance(0.8):
		p.Spec.LandingZone = pick(g, "Zone_1", "bad..zone", "-zone")
	default:
		p.Spec.LandingZone = pick(g, g.zones[1:]...)
	}
	if g.chance(0.35) {
		p.Spec.Quota = corev1.ResourceList{}
		for range 1 + g.rng.IntN(2) {
			key := pick(g, "requests.cpu", "pods", "limits.memory", "count/deployments.apps", "example.com/gpu", "services", "foo",
				"requests.cpu", "pods")
			if g.chance(0.05) {
				key = "Bad Key"
			}
			p.Spec.Quota[corev1.ResourceName(key)] = resource.MustParse(pick(g, "1", "2", "500m", "2Gi", "12", "100", "4", "-1", "1.5"))
		}
	}
	return p
}

// subjects are n different ones of names, now and then with a name the
// schema refuses (empty, system:, too long) or a duplicate, which a set
// refuses.
func (g *projectGen) subjects(n int, names ...string) []meshv1.SubjectName {
	g.rng.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	var out []meshv1.SubjectName
	for _, name := range names[:min(n, len(names))] {
		out = append(out, meshv1.SubjectName(name))
	}
	switch {
	case len(out) > 0 && g.chance(0.03):
		out = append(out, out[0])
	case g.chance(0.03):
		out = append(out, meshv1.SubjectName(pick(g, "", "system:masters", "system:authenticated", strings.Repeat("s", 254))))
	}
	return out
}

// oracle says what the operator must make of an accepted project.
type oracle struct {
	zone          *meshv1.MeshLandingZone
	closed        string
	auditorExists bool
}

type expected struct{ reason, message string }

// globalMapping is the suite's --role-mapping.
var globalMapping = map[string][]string{"admin": {"admin"}, "edit": {"edit"}, "view": {"view"}, "auditor": {customClusterRole}}

// mappingOf is the role mapping a project's pass uses: its zone's when the
// zone applies and has one, else --role-mapping (a project that never was
// in a zone keeps none while its zone cannot be applied).
func (o *oracle) mappingOf(p *meshv1.MeshProject) (mapping map[string][]string, baseline bool) {
	if p.Spec.LandingZone == o.zone.Name {
		mapping = map[string][]string{}
		for _, m := range o.zone.Spec.RoleMappings {
			for _, cr := range m.ClusterRoles {
				mapping[m.Role] = append(mapping[m.Role], string(cr))
			}
		}
		return mapping, true
	}
	return globalMapping, p.Spec.LandingZone == ""
}

// getsNamespace says whether p's zone lets it have a namespace: a new
// project waits while its zone is missing or disabled.
func (o *oracle) getsNamespace(p *meshv1.MeshProject) bool {
	return p.Spec.LandingZone == "" || p.Spec.LandingZone == o.zone.Name
}

// expect lists the problems that keep p from being Ready, in the order a
// pass meets them; owner says whether p got its namespace.
func (o *oracle) expect(p *meshv1.MeshProject, owner bool) []expected {
	var want []expected
	// A new project whose zone cannot be applied gets no namespace yet.
	switch z := p.Spec.LandingZone; z {
	case "", o.zone.Name:
	case o.closed:
		return append(want, expected{meshv1.ReasonLandingZoneDisabled, fmt.Sprintf("landing zone %q is disabled", z)})
	default:
		return append(want, expected{meshv1.ReasonLandingZoneNotFound, fmt.Sprintf("landing zone %q does not exist", z)})
	}
	if !owner {
		return append(want, expected{meshv1.ReasonNamespaceConflict, "namespace " + p.NamespaceName() + " "})
	}
	mapping, baseline := o.mappingOf(p)
	taken := map[string]bool{}
	for _, b := range p.Spec.RoleBindings {
		crs, ok := mapping[b.Role]
		if !ok {
			want = append(want, expected{meshv1.ReasonUnknownRole, fmt.Sprintf("role %q is not mapped", b.Role)})
			continue
		}
		var bound []string
		for _, cr := range crs {
			if name := bindingName(b.Role, crs, cr); taken[name] {
				want = append(want, expected{meshv1.ReasonRoleBindingNameClash,
					fmt.Sprintf("role %q (ClusterRole %q) needs RoleBinding %s", b.Role, cr, name)})
			} else {
				taken[name], bound = true, append(bound, cr)
			}
		}
		for _, cr := range bound {
			if cr == customClusterRole && !o.auditorExists {
				want = append(want, expected{meshv1.ReasonClusterRoleNotFound, fmt.Sprintf("maps to ClusterRole %q, which does not exist", cr)})
			}
		}
	}
	if !baseline {
		return want
	}
	hard := corev1.ResourceList{}
	if p.Spec.LandingZone == o.zone.Name {
		hard = o.zone.Spec.ResourceQuota.Hard.DeepCopy()
		for k, v := range p.Spec.Quota {
			// A project may lower any limit and add limits; it may raise
			// a limit of the zone only up to the zone's maximum for it.
			zoneLimit, limited := hard[k]
			if limited && v.Cmp(zoneLimit) <= 0 {
				continue
			}
			if limit, ok := o.zone.Spec.MaxQuota[k]; (ok && v.Cmp(limit) > 0) || (!ok && limited) {
				// The zone's own quota is applied instead.
				return append(want, expected{meshv1.ReasonQuotaAboveMaximum, "spec.quota raises limits beyond what landing zone"})
			}
		}
	}
	for k, v := range p.Spec.Quota {
		hard[k] = v
	}
	for k, v := range hard {
		if !quotaAccepts(k, v) {
			return append(want, expected{meshv1.ReasonResourceQuotaInvalid,
				"ResourceQuota " + p.NamespaceName() + "/" + replicator.ResourceQuotaName})
		}
	}
	return want
}

func bindingName(role string, clusterRoles []string, clusterRole string) string {
	if len(clusterRoles) == 1 {
		return replicator.RoleBindingName(role)
	}
	return replicator.MultiRoleBindingName(role, clusterRole)
}

// quotaAccepts is kube-apiserver's validation of a ResourceQuota's hard
// limit (ValidateResourceQuotaResourceName, ValidateResourceQuantityValue):
// a standard quota resource or a qualified name with a prefix; not
// negative; whole for counted resources and extended resources.
func quotaAccepts(name corev1.ResourceName, v resource.Quantity) bool {
	n := string(name)
	standard := []string{"cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
		"requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas",
		"services", "replicationcontrollers", "secrets", "persistentvolumeclaims", "configmaps", "services.nodeports", "services.loadbalancers"}
	counted := []string{"pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
		"persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}
	hugePages := strings.HasPrefix(n, "hugepages-") || strings.HasPrefix(n, "requests.hugepages-")
	if len(validation.IsQualifiedName(n)) > 0 || (!strings.Contains(n, "/") && !slices.Contains(standard, n) && !hugePages) {
		return false
	}
	extended := strings.Contains(n, "/") && !strings.Contains(n, "kubernetes.io/") && !strings.HasPrefix(n, "requests.") &&
		len(validation.IsQualifiedName("requests."+n)) == 0
	return v.Sign() >= 0 && ((!slices.Contains(counted, n) && !extended) || v.MilliValue()%1000 == 0)
}

// expectObjects checks the namespace and RoleBindings of a project that
// owns its namespace against its spec.
func (o *oracle) expectObjects(p *meshv1.MeshProject, replay string) {
	GinkgoHelper()
	ns := getNamespace(Default, p.NamespaceName())
	Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelCustomer, string(p.Spec.CustomerIdentifier)), replay)
	Expect(ns.Labels).To(HaveKeyWithValue(meshv1.LabelProject, string(p.Spec.ProjectIdentifier)), replay)
	for k, v := range p.Spec.Tags {
		Expect(ns.Labels).To(HaveKeyWithValue(meshv1.TagLabelPrefix+k, string(v)), replay)
	}

	want := map[string][]rbacv1.Subject{}
	mapping, _ := o.mappingOf(p)
	for _, b := range p.Spec.RoleBindings {
		crs := mapping[b.Role]
		subjects := make([]rbacv1.Subject, 0, len(b.Users)+len(b.Groups))
		for _, u := range b.Users {
			subjects = append(subjects, user("mesh:"+string(u)))
		}
		for _, gr := range b.Groups {
			subjects = append(subjects, group(string(gr)))
		}
		for _, cr := range crs {
			name := bindingName(b.Role, crs, cr)
			if _, taken := want[name]; taken || (cr == customClusterRole && !o.auditorExists) {
				continue
			}
			want[name] = subjects
		}
	}
	var list rbacv1.RoleBindingList
	Expect(fw.Client.List(ctx, &list, client.InNamespace(ns.Name),
		client.MatchingLabels{meshv1.LabelManagedBy: meshv1.ManagedByValue})).To(Succeed())
	got := map[string][]rbacv1.Subject{}
	for _, rb := range list.Items {
		got[rb.Name] = rb.Subjects
	}
	Expect(got).To(HaveLen(len(want)), "%s: %s: RoleBindings %v, want %v", replay, describe(p), keys(got), keys(want))
	for name, subjects := range want {
		Expect(got).To(HaveKey(name), "%s: %s", replay, describe(p))
		Expect(got[name]).To(ConsistOf(subjects), "%s: %s: RoleBinding %s", replay, describe(p), name)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// writePath splits "METHOD /path" into the API group path before
// /namespaces/<ns>/ or the cluster-scoped resource.
var (
	namespacedWrite = regexp.MustCompile(`^[A-Z]+ /apis?(/[^/]+)*?/namespaces/([^/]+)/([^/]+)(/[^/]+)?$`)
	namespaceWrite  = regexp.MustCompile(`^[A-Z]+ /api/v1/namespaces(/([^/]+))?$`)
	meshWrite       = regexp.MustCompile(`^[A-Z]+ /apis/meshcloud\.io/v1alpha1/(meshprojects|meshlandingzones)/([^/]+)(/status)?$`)
)

// allowedWrite reports whether a write of the batch's window went where the
// operator may write for the batch: into a namespace the batch owns (or
// another project's own namespace), to a MeshProject of the batch or a
// zone it uses, a project or zone that existed before it, an Event in
// default or a Lease in meshcloud.
func allowedWrite(write string, batch, earlier map[string]bool, owners map[string]string, zones ...string) bool {
	if m := namespaceWrite.FindStringSubmatch(write); m != nil {
		return m[2] == "" || ownedNamespace(m[2], owners)
	}
	if m := meshWrite.FindStringSubmatch(write); m != nil {
		return (m[1] == "meshprojects" && batch[m[2]]) ||
			(m[1] == "meshlandingzones" && slices.Contains(zones, m[2])) ||
			earlier[m[1]+"/"+m[2]]
	}
	if m := namespacedWrite.FindStringSubmatch(write); m != nil {
		switch ns, res := m[2], m[3]; {
		case res == "events":
			return ns == metav1.NamespaceDefault
		case res == "leases":
			return ns == operatorNamespace
		case slices.Contains([]string{"rolebindings", "resourcequotas", "limitranges", "networkpolicies"}, res):
			return ownedNamespace(ns, owners)
		}
	}
	return false
}

// ownedNamespace reports whether a project of the batch owns ns, or else
// whether ns carries the mark of a MeshProject whose namespace it is.
func ownedNamespace(ns string, owners map[string]string) bool {
	if _, ok := owners[ns]; ok {
		return true
	}
	namespace := &corev1.Namespace{}
	if fw.Client.Get(ctx, client.ObjectKey{Name: ns}, namespace) != nil {
		return false
	}
	p := &meshv1.MeshProject{}
	err := fw.Client.Get(ctx, client.ObjectKey{Name: namespace.Annotations[meshv1.AnnotationMeshProject]}, p)
	return err == nil && p.NamespaceName() == ns
}

func writesSince(before, now map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range now {
		if d := n - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// reconcilePanics is controller_runtime_reconcile_panics_total over all
// controllers of this process.
func reconcilePanics() float64 {
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	var total float64
	for _, f := range families {
		if f.GetName() == "controller_runtime_reconcile_panics_total" {
			for _, m := range f.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// firstCause names the field of the first cause of an Invalid error.
func firstCause(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Details != nil && len(status.Status().Details.Causes) > 0 {
		return status.Status().Details.Causes[0].Field
	}
	return string(apierrors.ReasonForError(err))
}

// describe is a project's spec in one line, for failure messages.
func describe(p *meshv1.MeshProject) string {
	return fmt.Sprintf("MeshProject %s %+v", p.Name, p.Spec)
}

// deleteAndWait deletes the projects and zones and waits until they are
// gone, so that no later spec sees the operator finish their deletion.
func deleteAndWait(projects []*meshv1.MeshProject, zones ...*meshv1.MeshLandingZone) {
	objs := make([]client.Object, 0, len(projects)+len(zones))
	for _, p := range projects {
		objs = append(objs, p)
	}
	for _, z := range zones {
		objs = append(objs, z)
	}
	for _, obj := range objs {
		Expect(client.IgnoreNotFound(fw.Client.Delete(ctx, obj))).To(Succeed())
	}
	Eventually(func(g Gomega) {
		for _, obj := range objs {
			err := fw.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s still exists", obj, obj.GetName())
		}
	}, framework.SlowTimeout, 200*time.Millisecond).Should(Succeed())
}
