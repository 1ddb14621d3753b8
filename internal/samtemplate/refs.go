package samtemplate

import (
	"strconv"
	"strings"
)

// RefName returns X for map{"Ref": "X"}.
func RefName(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	name, ok := m["Ref"].(string)
	return name, ok && name != ""
}

// GetAttName returns "Resource.Attribute" for map{"Fn::GetAtt": "Resource.Attribute"}
// and for the list form map{"Fn::GetAtt": ["Resource", "Attribute"]}.
func GetAttName(v any) (string, bool) {
	res, attr, ok := SplitGetAtt(v)
	if !ok {
		return "", false
	}
	return res + "." + attr, true
}

// SplitGetAtt returns the resource and the attribute of an Fn::GetAtt in
// either form. The attribute may itself contain dots (Endpoint.Address).
func SplitGetAtt(v any) (resource, attribute string, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", "", false
	}
	switch g := m["Fn::GetAtt"].(type) {
	case string:
		resource, attribute, ok = strings.Cut(g, ".")
	case []any:
		if len(g) == 2 {
			r, rok := g[0].(string)
			a, aok := g[1].(string)
			resource, attribute, ok = r, a, rok && aok
		}
	}
	if resource == "" || attribute == "" {
		return "", "", false
	}
	return resource, attribute, ok
}

// SubTemplate returns the template string of an Fn::Sub in either form
// (map{"Fn::Sub": s} or map{"Fn::Sub": [s, vars]}).
func SubTemplate(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", false
	}
	switch s := m["Fn::Sub"].(type) {
	case string:
		return s, true
	case []any:
		if len(s) >= 1 {
			str, ok := s[0].(string)
			return str, ok
		}
	}
	return "", false
}

// SubVariables lists the ${...} names of an Fn::Sub template in order,
// without the literal ${!...} escapes. "${Table.Arn}" yields "Table.Arn".
func SubVariables(s string) []string {
	var names []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return names
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return names
		}
		name := s[i+2 : i+j]
		s = s[i+j+1:]
		if strings.HasPrefix(name, "!") {
			continue
		}
		names = append(names, strings.TrimSpace(name))
	}
}

// Reference is a name an intrinsic function depends on.
type Reference struct {
	Kind      string // "Ref", "Fn::GetAtt" or "Fn::Sub"
	Name      string // logical ID, parameter or pseudo parameter (AWS::Region)
	Attribute string // for Fn::GetAtt and ${Name.Attribute}; "" otherwise
	Path      string // where it occurs, e.g. Resources.Table.Properties.X
}

// References walks v and returns every Ref, Fn::GetAtt and Fn::Sub variable
// in it, in a stable order. Variables that a list-form Fn::Sub defines
// itself are not references; the values defining them are walked.
func References(v any) []Reference {
	var out []Reference
	walkRefs(v, "", &out)
	return out
}

func walkRefs(v any, path string, out *[]Reference) {
	switch n := v.(type) {
	case []any:
		for i, e := range n {
			walkRefs(e, path+"["+strconv.Itoa(i)+"]", out)
		}
	case map[string]any:
		if name, ok := RefName(n); ok {
			*out = append(*out, Reference{Kind: "Ref", Name: name, Path: path})
			return
		}
		if res, attr, ok := SplitGetAtt(n); ok {
			*out = append(*out, Reference{Kind: "Fn::GetAtt", Name: res, Attribute: attr, Path: path})
			return
		}
		if s, ok := SubTemplate(n); ok {
			local := map[string]bool{}
			if l, isList := n["Fn::Sub"].([]any); isList && len(l) > 1 {
				if vars, isMap := l[1].(map[string]any); isMap {
					for _, k := range sortedKeys(vars) {
						local[k] = true
						walkRefs(vars[k], path+".Fn::Sub."+k, out)
					}
				}
			}
			for _, name := range SubVariables(s) {
				if local[name] {
					continue
				}
				res, attr, _ := strings.Cut(name, ".")
				*out = append(*out, Reference{Kind: "Fn::Sub", Name: res, Attribute: attr, Path: path})
			}
			return
		}
		for _, k := range sortedKeys(n) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			walkRefs(n[k], p, out)
		}
	}
}
