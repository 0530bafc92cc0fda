// Command crdgen runs controller-gen's CRD generator with one change: every
// resource.Quantity in the CRDs gets a length bound and a CEL rule that
// checks it with the Kubernetes quantity library.
//
// Why not a marker: a quantity is a map value in every CRD field that has
// one (spec.quota, resourceQuota.hard, maxQuota, the LimitRange maps), and
// markers cannot reach map values. Without maxLength the API server prices
// an int-or-string at the request size (3 MiB), so a CEL rule per value
// would exceed the CRD cost budget many times over.
//
// Why the pattern before isQuantity: resource.ParseQuantity, which both
// isQuantity and the operator's JSON decoding call, does not return for
// exponents beyond int32 (1e2147483648, 1e-9999999999) and wraps others
// (1e9999999999 parses as 10e1410065406, whose comparison does not return
// either). The rule lets only exponents of at most two digits reach it.
//
// Usage: crdgen <paths> <output directory>, as
// controller-gen crd paths=<paths> output:crd:artifacts:config=<dir>.
package main

import (
	"fmt"
	"os"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-tools/pkg/crd"
	"sigs.k8s.io/controller-tools/pkg/genall"
	"sigs.k8s.io/controller-tools/pkg/loader"
)

// QuantityMaxLength bounds a quantity written as a string.
const QuantityMaxLength = 64

// quantityRule admits non-negative integers, and strings that match a
// quantity with an exponent of at most two digits and that the quantity
// library accepts as non-negative. The ternary keeps isQuantity from ever
// seeing a string the pattern refuses.
const quantityRule = `type(self) == int ? self >= 0 : ` +
	`(self.matches('^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]{1,2})?$') ? ` +
	`isQuantity(self) && !quantity(self).isLessThan(quantity('0')) : false)`

const quantityMessage = "must be a quantity such as 500m, 2Gi or 10, not negative, " +
	"at most 64 characters with an exponent of at most two digits (1e99)"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: crdgen <paths> <output directory>")
		os.Exit(2)
	}
	const resourcePkg = "k8s.io/apimachinery/pkg/api/resource"
	known := crd.KnownPackages[resourcePkg]
	crd.KnownPackages[resourcePkg] = func(p *crd.Parser, pkg *loader.Package) {
		known(p, pkg)
		id := crd.TypeIdent{Name: "Quantity", Package: pkg}
		s := p.Schemata[id]
		s.MaxLength = ptr.To[int64](QuantityMaxLength)
		s.XValidations = apiextensionsv1.ValidationRules{{Rule: quantityRule, Message: quantityMessage}}
		p.Schemata[id] = s
	}

	var gen genall.Generator = crd.Generator{}
	rt, err := genall.Generators{&gen}.ForRoots(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rt.OutputRules = genall.OutputRules{Default: genall.OutputArtifacts{Config: genall.OutputToDirectory(os.Args[2])}}
	if failed := rt.Run(); failed {
		os.Exit(1)
	}
}
