package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/resource"
	kjson "sigs.k8s.io/json"
)

// A quantity the CRD's pattern admits but resource.ParseQuantity refuses
// ("1e1.5") makes the whole list or watch event that carries it fail to
// decode, and with it every other object of the informer. The schema
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
		{"limitRange", "limits", "[]", "max"},
		{"limitRange", "limits", "[]", "min"},
		{"limitRange", "limits", "[]", "default"},
		{"limitRange", "limits", "[]", "defaultRequest"},
		{"limitRange", "limits", "[]", "maxLimitRequestRatio"},
	}
)

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
// sensitive). Only if that fails does it look for quantities that do not
// parse, drop them and decode again; reset clears what the failed attempt
// left behind.
func decodeLeniently(data []byte, into any, paths []quantityPath, reset func()) ([]string, error) {
	err := kjson.UnmarshalCaseSensitivePreserveInts(data, into)
	if err == nil {
		return nil, nil
	}
	var raw map[string]any
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	if decoder.Decode(&raw) != nil {
		return nil, err
	}
	var invalid []string
	for _, path := range paths {
		invalid = dropInvalid(raw, path, "spec", invalid)
	}
	if len(invalid) == 0 {
		return nil, err
	}
	cleaned, marshalErr := json.Marshal(raw)
	if marshalErr != nil {
		return nil, err
	}
	reset()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(cleaned, into); err != nil {
		return nil, err
	}
	slices.Sort(invalid)
	return invalid, nil
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
			if _, err := resource.ParseQuantity(text); err != nil {
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
