package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
)

// A quantity the CRD's pattern admits but resource.ParseQuantity refuses
// ("1e1.5") makes the whole list or watch event that carries it fail to
// decode, and with it every other object of the informer; one it never
// returns from ("1e2147483648") would stop the informer for good. The schema
// refuses such values now, but objects stored before it did are still in
// etcd. So the specs decode leniently: an entry that is not a quantity is
// left out and named in InvalidQuantities, and the operator reports it on
// that object alone.

// quantityPath is where quantities sit in a spec: the keys of the maps
// leading to a map of quantities; "[]" steps into every item of a list.
type quantityPath []string

var (
	projectQuantities = []quantityPath{{"quota"}}
	zoneQuantities    = []quantityPath{
		{"resourceQuota", "hard"},
		{"maxQuota"},
		limitRangeItem("max"),
		limitRangeItem("min"),
		limitRangeItem("default"),
		limitRangeItem("defaultRequest"),
		limitRangeItem("maxLimitRequestRatio"),
	}
)

// limitRangeItem is the path of the quantities under field in every item of
// a landing zone's limitRange.limits.
func limitRangeItem(field string) quantityPath {
	return quantityPath{"limitRange", "limits", "[]", field}
}

// UnmarshalJSON decodes the spec; quota entries that are not quantities
// are left out and listed in InvalidQuantities.
func (s *MeshProjectSpec) UnmarshalJSON(data []byte) error {
	type plain MeshProjectSpec
	invalid, err := decodeLeniently(data, (*plain)(s), projectQuantities, func() { *s = MeshProjectSpec{} })
	s.InvalidQuantities = invalid
	return err
}

// UnmarshalJSON decodes the spec; quantities that do not parse are left
// out and listed in InvalidQuantities.
func (s *MeshLandingZoneSpec) UnmarshalJSON(data []byte) error {
	type plain MeshLandingZoneSpec
	invalid, err := decodeLeniently(data, (*plain)(s), zoneQuantities, func() { *s = MeshLandingZoneSpec{} })
	s.InvalidQuantities = invalid
	return err
}

// decodeLeniently decodes data into into as the API machinery does (case
// sensitive). When that fails, or when data may hold a quantity that
// resource.ParseQuantity would never return from, it drops the quantities
// that are not safe to parse or do not parse, and decodes again; reset
// clears what a failed attempt left behind.
func decodeLeniently(data []byte, into any, paths []quantityPath, reset func()) ([]string, error) {
	var err error
	if !mayHoldLongExponent(data) {
		if err = kjson.UnmarshalCaseSensitivePreserveInts(data, into); err == nil {
			return nil, nil
		}
	}
	var raw map[string]any
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	if rawErr := decoder.Decode(&raw); rawErr != nil {
		return nil, errors.Join(err, rawErr)
	}
	var invalid []string
	for _, path := range paths {
		invalid = dropInvalid(raw, path, "spec", invalid)
	}
	cleaned, marshalErr := json.Marshal(raw)
	if marshalErr != nil {
		return nil, errors.Join(err, marshalErr)
	}
	reset()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(cleaned, into); err != nil {
		return nil, err
	}
	slices.Sort(invalid)
	return invalid, nil
}

// mayHoldLongExponent reports whether data has an exponent of three or
// more digits anywhere ("e123", "E-4567"): resource.ParseQuantity does not
// return for exponents beyond int32 ("1e2147483648"), so such data is not
// handed to it before its quantities were checked one by one. A user name
// like "joe2024" also matches; that only costs the slower path.
func mayHoldLongExponent(data []byte) bool {
	for i := 0; i < len(data); i++ {
		if data[i] != 'e' && data[i] != 'E' {
			continue
		}
		j := i + 1
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		digits := 0
		for j < len(data) && data[j] >= '0' && data[j] <= '9' {
			digits++
			j++
		}
		if digits >= 3 {
			return true
		}
	}
	return false
}

// safeQuantity matches what the CRDs admit as a quantity string: at most
// 64 characters, an exponent of at most two digits (see hack/crdgen).
var safeQuantity = regexp.MustCompile(`^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]{1,2})?$`)

// parsesSafely reports whether text is a quantity, without handing
// resource.ParseQuantity a string it would not return from.
func parsesSafely(text string) bool {
	if len(text) > 64 || !safeQuantity.MatchString(text) {
		return false
	}
	_, err := resource.ParseQuantity(text)
	return err == nil
}

// dropInvalid removes from the map of quantities at path below node every
// entry that does not parse, and appends "<where>[<key>]: <value>" for each.
func dropInvalid(node any, path quantityPath, where string, invalid []string) []string {
	if len(path) == 0 {
		quantities, ok := node.(map[string]any)
		if !ok {
			return invalid
		}
		for key, value := range quantities {
			text := fmt.Sprint(value)
			if _, isText := value.(string); !isText {
				if _, isNumber := value.(json.Number); !isNumber {
					text = ""
				}
			}
			if !parsesSafely(text) {
				invalid = append(invalid, fmt.Sprintf("%s[%s]: %q", where, key, fmt.Sprint(value)))
				delete(quantities, key)
			}
		}
		return invalid
	}
	if path[0] == "[]" {
		items, _ := node.([]any)
		for i, item := range items {
			invalid = dropInvalid(item, path[1:], fmt.Sprintf("%s[%d]", where, i), invalid)
		}
		return invalid
	}
	object, ok := node.(map[string]any)
	if !ok {
		return invalid
	}
	return dropInvalid(object[path[0]], path[1:], where+"."+path[0], invalid)
}
