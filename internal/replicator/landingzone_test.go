package replicator

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
)

func list(pairs ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(pairs); i += 2 {
		out[corev1.ResourceName(pairs[i])] = resource.MustParse(pairs[i+1])
	}
	return out
}

// zoneBuilder builds MeshLandingZones for table tests.
type zoneBuilder struct{ z meshv1.MeshLandingZone }

func aZone(name string) *zoneBuilder {
	return &zoneBuilder{z: meshv1.MeshLandingZone{ObjectMeta: metav1.ObjectMeta{Name: name}}}
}

func (b *zoneBuilder) maxQuota(pairs ...string) *zoneBuilder {
	b.z.Spec.MaxQuota = list(pairs...)
	return b
}

func (b *zoneBuilder) mapping(role string, clusterRoles ...meshv1.ClusterRoleName) *zoneBuilder {
	b.z.Spec.RoleMappings = append(b.z.Spec.RoleMappings, meshv1.LandingZoneRoleMapping{Role: role, ClusterRoles: clusterRoles})
	return b
}

func (b *zoneBuilder) hard(pairs ...string) *zoneBuilder {
	b.z.Spec.ResourceQuota = &meshv1.ResourceQuotaSpec{Hard: list(pairs...)}
	return b
}

func (b *zoneBuilder) build() *meshv1.MeshLandingZone { return b.z.DeepCopy() }

func TestQuotaAboveMaximum(t *testing.T) {
	tests := []struct {
		name  string
		zone  *meshv1.MeshLandingZone
		quota corev1.ResourceList
		want  []string
	}{
		{name: "no zone", quota: list("requests.cpu", "64")},
		{name: "below", zone: aZone("z").maxQuota("requests.cpu", "16").build(), quota: list("requests.cpu", "8")},
		{name: "equal is allowed", zone: aZone("z").maxQuota("requests.cpu", "16").build(), quota: list("requests.cpu", "16000m")},
		{name: "a limit the zone does not set may be added", zone: aZone("z").maxQuota("requests.cpu", "16").build(), quota: list("pods", "1000")},
		{name: "a zone limit may be lowered without a maximum", zone: aZone("z").hard("pods", "10").build(), quota: list("pods", "5")},
		{name: "a zone limit may be lowered below its maximum", zone: aZone("z").hard("pods", "10").maxQuota("pods", "8").build(), quota: list("pods", "9")},
		{
			name: "a zone limit may not be raised without a maximum", zone: aZone("z").hard("pods", "10").build(), quota: list("pods", "11"),
			want: []string{"pods 11 is above the zone's 10, and the zone sets no maximum for it"},
		},
		{name: "a zone limit may be raised up to its maximum", zone: aZone("z").hard("pods", "10").maxQuota("pods", "20").build(), quota: list("pods", "20")},
		{
			name: "above, sorted by resource", zone: aZone("z").maxQuota("requests.cpu", "16", "limits.memory", "32Gi").build(),
			quota: list("requests.cpu", "17", "limits.memory", "64Gi", "pods", "9"),
			want:  []string{"limits.memory 64Gi is above the maximum 32Gi", "requests.cpu 17 is above the maximum 16"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(nil)
			p.Spec.Quota = tt.quota
			s := &scope{project: p, zone: tt.zone}
			if diff := cmp.Diff(tt.want, s.quotaAboveMaximum()); diff != "" {
				t.Errorf("quotaAboveMaximum (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultLimitRange(t *testing.T) {
	tests := []struct {
		name string
		in   corev1.LimitRangeItem
		want corev1.LimitRangeItem
	}{
		{
			name: "default limit from max, default request from default",
			in:   corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: list("cpu", "2")},
			want: corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: list("cpu", "2"), Default: list("cpu", "2"), DefaultRequest: list("cpu", "2")},
		},
		{
			name: "default request from min when there is no default",
			in:   corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Min: list("memory", "64Mi")},
			want: corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Min: list("memory", "64Mi"), Default: list(), DefaultRequest: list("memory", "64Mi")},
		},
		{
			name: "given defaults win",
			in:   corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: list("cpu", "2"), Default: list("cpu", "500m"), DefaultRequest: list("cpu", "100m")},
			want: corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: list("cpu", "2"), Default: list("cpu", "500m"), DefaultRequest: list("cpu", "100m")},
		},
		{
			name: "pods get no defaults",
			in:   corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: list("cpu", "2")},
			want: corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: list("cpu", "2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{tt.in}}
			defaultLimitRange(&spec)
			if !equality.Semantic.DeepEqual(tt.want, spec.Limits[0]) {
				t.Errorf("defaulted item (-want +got):\n%s", cmp.Diff(tt.want, spec.Limits[0]))
			}
		})
	}
}

func TestDefaultNetworkPolicy(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := intstr.FromInt32(53)
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	tests := []struct {
		name string
		in   networkingv1.NetworkPolicySpec
		want networkingv1.NetworkPolicySpec
	}{
		{name: "no rules: ingress", in: networkingv1.NetworkPolicySpec{}, want: networkingv1.NetworkPolicySpec{PolicyTypes: ingress}},
		{
			name: "egress rules add Egress; ports default to TCP",
			in: networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
				{Port: &port}, {Protocol: &udp, Port: &port}}}}},
			want: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: &tcp, Port: &port}, {Protocol: &udp, Port: &port}}}},
			},
		},
		{
			name: "given policy types are kept",
			in:   networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}},
			want: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := *tt.in.DeepCopy()
			defaultNetworkPolicy(&got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("defaulted spec (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRoleBindingNames(t *testing.T) {
	tests := []struct{ role, clusterRole, want string }{
		{"reader", "view", "meshproject-reader-view"},
		{"reader", "system:aggregate-to-view", "meshproject-reader-system:aggregate-to-view"},
		{"reader", strings.Repeat("x", 250), "meshproject-reader-086d4a1c293bde31"},
	}
	for _, tt := range tests {
		if got := MultiRoleBindingName(tt.role, tt.clusterRole); got != tt.want {
			t.Errorf("MultiRoleBindingName(%q, %q) = %q, want %q", tt.role, tt.clusterRole, got, tt.want)
		}
	}
	if got := RoleBindingName("admin"); got != "meshproject-admin" {
		t.Errorf("RoleBindingName(admin) = %q; scripts rely on meshproject-<role>", got)
	}
}

func TestZoneMapping(t *testing.T) {
	zone := aZone("standard").mapping("admin", "admin").mapping("reader", "view", "my-custom-reader").build()
	m := zoneMapping(zone.Name, zone.Spec.RoleMappings)
	if diff := cmp.Diff(map[string][]string{"admin": {"admin"}, "reader": {"view", "my-custom-reader"}}, m.roles); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	if got, want := m.String(), "admin=admin,reader=view+my-custom-reader"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if !m.maps("my-custom-reader") || m.maps("edit") {
		t.Errorf("maps: my-custom-reader %v, edit %v", m.maps("my-custom-reader"), m.maps("edit"))
	}
	if got, want := (RoleMapping{"admin": "admin"}).mapping().source, "--role-mapping"; got != want {
		t.Errorf("global mapping source %q, want %q", got, want)
	}
}

func TestEffectiveLandingZone(t *testing.T) {
	named := project(nil)
	named.Spec.LandingZone = "gold"
	for _, tt := range []struct {
		p           *meshv1.MeshProject
		defaultZone string
		want        string
	}{
		{project(nil), "", ""},
		{project(nil), "standard", "standard"},
		{named, "standard", "gold"},
	} {
		if got := EffectiveLandingZone(tt.p, tt.defaultZone); got != tt.want {
			t.Errorf("EffectiveLandingZone(%q, default %q) = %q, want %q", tt.p.Spec.LandingZone, tt.defaultZone, got, tt.want)
		}
	}
}
