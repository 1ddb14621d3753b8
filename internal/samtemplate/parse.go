// Package samtemplate reads the project's SAM template (template.yaml) into
// plain Go values: the resources, the merged function settings and the HTTP
// API route table. The tests use it to check the template against the Go
// code; the local front door uses it to route requests the way API Gateway
// would.
//
// CloudFormation's short-form intrinsic tags are kept as the long-form maps
// CloudFormation itself uses, so nothing is lost: !Ref X becomes
// map{"Ref": "X"}, !GetAtt A.B becomes map{"Fn::GetAtt": "A.B"}, !Sub s
// becomes map{"Fn::Sub": s}, !Condition C becomes map{"Condition": "C"} and
// every other !Name becomes map{"Fn::Name": value}.
package samtemplate

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// ErrTemplate classifies every error about the template's content (as
// opposed to reading the file).
var ErrTemplate = errors.New("samtemplate: invalid template")

// intrinsicKey maps a short-form tag CloudFormation accepts to the key of
// its long form.
func intrinsicKey(tag string) (string, bool) {
	switch tag {
	case "!Ref":
		return "Ref", true
	case "!Condition":
		return "Condition", true
	case "!GetAtt", "!Sub", "!Join", "!If", "!Equals", "!Select", "!Split", "!GetAZs",
		"!ImportValue", "!FindInMap", "!Base64", "!Cidr", "!Not", "!And", "!Or",
		"!Transform", "!Length", "!ToJsonString":
		return "Fn::" + tag[1:], true
	}
	return "", false
}

// Load reads and parses a template file.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: read %s: %w", path, err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template. Only the first YAML document is read.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: YAML: %w", ErrTemplate, err)
	}
	if doc.Kind == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrTemplate)
	}
	v, err := convert(&doc, map[*yaml.Node]bool{})
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the top level is not a mapping", ErrTemplate)
	}
	return build(raw)
}

// convert turns a node into map[string]any, []any, string, int, float64,
// bool or nil. active guards against aliases that contain themselves.
func convert(n *yaml.Node, active map[*yaml.Node]bool) (any, error) {
	if active[n] {
		return nil, fmt.Errorf("%w: line %d: alias refers to a node that contains it", ErrTemplate, n.Line)
	}
	active[n] = true
	defer delete(active, n)

	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0], active)
	case yaml.AliasNode:
		return convert(n.Alias, active)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return convertIntrinsic(n, active)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return convertScalar(n)
	case yaml.SequenceNode:
		return convertSequence(n, active)
	case yaml.MappingNode:
		return convertMapping(n, active)
	}
	return nil, fmt.Errorf("%w: line %d: unexpected YAML node kind %d", ErrTemplate, n.Line, n.Kind)
}

// convertIntrinsic turns a short-form tag into its long-form map. A tagged
// scalar keeps its text verbatim (!Ref 123 names "123").
func convertIntrinsic(n *yaml.Node, active map[*yaml.Node]bool) (any, error) {
	key, ok := intrinsicKey(n.Tag)
	if !ok {
		return nil, fmt.Errorf("%w: line %d: unknown tag %s", ErrTemplate, n.Line, n.Tag)
	}
	var (
		v   any
		err error
	)
	switch n.Kind {
	case yaml.ScalarNode:
		v = n.Value
	case yaml.SequenceNode:
		v, err = convertSequence(n, active)
	case yaml.MappingNode:
		v, err = convertMapping(n, active)
	default:
		err = fmt.Errorf("%w: line %d: %s on an unexpected node kind %d", ErrTemplate, n.Line, n.Tag, n.Kind)
	}
	if err != nil {
		return nil, err
	}
	if (key == "Ref" || key == "Condition") && n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("%w: line %d: %s needs a name, not a collection", ErrTemplate, n.Line, n.Tag)
	}
	return map[string]any{key: v}, nil
}

func convertScalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!int", "!!float", "!!bool", "!!null":
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrTemplate, n.Line, err)
		}
		return v, nil
	}
	// Strings, timestamps and binary stay as written: CloudFormation reads
	// them as strings too.
	return n.Value, nil
}

func convertSequence(n *yaml.Node, active map[*yaml.Node]bool) ([]any, error) {
	out := make([]any, 0, len(n.Content))
	for _, c := range n.Content {
		v, err := convert(c, active)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// convertMapping builds a map. Duplicate keys are an error (CloudFormation
// rejects them too); merge keys (<<) fill only keys not set explicitly.
func convertMapping(n *yaml.Node, active map[*yaml.Node]bool) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, vn := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%w: line %d: mapping key is not a scalar", ErrTemplate, k.Line)
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, vn)
			continue
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("%w: line %d: duplicate key %q", ErrTemplate, k.Line, k.Value)
		}
		v, err := convert(vn, active)
		if err != nil {
			return nil, err
		}
		out[k.Value] = v
	}
	for _, m := range merges {
		v, err := convert(m, active)
		if err != nil {
			return nil, err
		}
		var sources []any
		switch mv := v.(type) {
		case map[string]any:
			sources = []any{mv}
		case []any:
			sources = mv
		default:
			return nil, fmt.Errorf("%w: line %d: merge key needs a mapping or a list of mappings", ErrTemplate, m.Line)
		}
		for _, s := range sources {
			sm, ok := s.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: line %d: merge key needs a mapping or a list of mappings", ErrTemplate, m.Line)
			}
			for _, key := range sortedKeys(sm) {
				if _, set := out[key]; !set {
					out[key] = sm[key]
				}
			}
		}
	}
	return out, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
