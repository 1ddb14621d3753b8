package hostile

import (
	"encoding/json"
	"fmt"
	"net/url"
	"sort"

	"github.com/wxpay-serverless/wxpay-serverless/shared/apigw"
)

// Expect is what a case must be answered with.
type Expect struct {
	// Status is the exact status required; 0 means any 4xx.
	Status int
	// Harmless, when set, is the documented answer of an input that is
	// not hostile for this route; Effects says the answer may write and
	// call WeChat Pay (it is then run after every hostile case).
	Harmless *Harmless
	Effects  bool
	// Twin: the input is ignored by the route, so the answer (status and
	// WeChat Pay calls) must equal that of the same request without it.
	Twin *Request
	// Valid: the input is a well-formed value of the parameter it
	// replaced; any answer but a 5xx is the route's documented one.
	Valid bool
}

// Case is one hostile input applied to one route.
type Case struct {
	Name   string // input name and what it replaced
	Input  Input
	Req    Request
	Expect Expect
	// Control marks the template sent as is, after the hostile cases.
	Control bool
}

// routerLevel inputs are refused by the router before any handler reads
// the body (size, base64), whatever the route.
func routerLevel(in Input) bool { return in.Status != 0 || in.RawBase64 }

// Cases expands the hostile table for one route: body inputs replace the
// body, path inputs each path parameter in turn, query inputs each query
// parameter the route reads, field inputs each template field of their
// kind; then the route's extra bodies and its control.
func Cases(rt apigw.Route, spec Spec, inputs []Input) ([]Case, error) {
	var out []Case
	// fresh renders the template for case n: the Fresh fields (except the
	// one the case replaces) get a unique suffix.
	fresh := func(n int, except string) ([]byte, error) {
		if spec.Template == nil {
			return nil, nil
		}
		body, err := json.Marshal(spec.Template)
		if err != nil {
			return nil, err
		}
		for _, f := range spec.Fresh {
			if f == except {
				continue
			}
			v, err := getField(body, f)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", rt.Key(), f, err)
			}
			val, _ := json.Marshal(fmt.Sprintf("%sX%03d", v, n))
			if body, err = setField(body, f, val); err != nil {
				return nil, fmt.Errorf("%s %s: %w", rt.Key(), f, err)
			}
		}
		return body, nil
	}
	with := func(mut func(r *Request), except string) (Request, error) {
		body, err := fresh(len(out), except)
		if err != nil {
			return Request{}, err
		}
		r := Request{Route: rt, Params: map[string]string{}, Body: body}
		for k, v := range spec.Params {
			r.Params[k] = v
		}
		mut(&r)
		return r, nil
	}
	isValid := func(param, input string) bool {
		for _, name := range spec.Valid[param] {
			if name == input {
				return true
			}
		}
		return false
	}
	add := func(name, param string, in Input, mut func(r *Request), except string) error {
		req, err := with(mut, except)
		if err != nil {
			return err
		}
		c := Case{Name: name, Input: in, Req: req}
		if isValid(param, in.Name) {
			c.Expect = Expect{Valid: true, Effects: true,
				Harmless: &Harmless{Why: in.Value + in.JSON + " is a well-formed " + param + ": the route answers as for any unknown value"}}
		}
		out = append(out, c)
		return nil
	}
	params := PathParams(rt.Path)
	fields := make([]string, 0, len(spec.Fields))
	for f := range spec.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, in := range inputs {
		switch in.Where {
		case InBody:
			req, err := with(func(r *Request) { r.Body, r.Base64, r.RawBase64 = in.Raw, in.Base64, in.RawBase64 }, "")
			if err != nil {
				return nil, err
			}
			c := Case{Name: in.Name, Input: in, Req: req, Expect: Expect{Status: in.Status}}
			if h, ok := spec.Harmless[in.Name]; ok {
				c.Expect = Expect{Harmless: &h, Effects: true}
			} else if spec.IgnoresBody && !routerLevel(in) {
				twin := req
				twin.Body, twin.Base64, twin.RawBase64 = nil, false, false
				c.Expect = Expect{Harmless: &Harmless{Why: "the route reads no body"}, Twin: &twin}
			}
			out = append(out, c)
		case InPath:
			for _, name := range params {
				if err := add(in.Name+" in {"+name+"}", "{"+name+"}", in, func(r *Request) { r.Params[name] = in.Value }, ""); err != nil {
					return nil, err
				}
			}
		case InQuery:
			for _, q := range spec.Query {
				if spec.QueryLenient {
					req, err := with(func(r *Request) { r.Query = url.Values{q: {in.Value}}.Encode() }, "")
					if err != nil {
						return nil, err
					}
					twin := req
					twin.Query = ""
					out = append(out, Case{Name: in.Name + " in ?" + q, Input: in, Req: req,
						Expect: Expect{Harmless: &Harmless{Why: "?" + q + " is true for true/1 and false for anything else"}, Twin: &twin}})
					continue
				}
				if err := add(in.Name+" in ?"+q, "?"+q, in, func(r *Request) { r.Query = url.Values{q: {in.Value}}.Encode() }, ""); err != nil {
					return nil, err
				}
			}
		case InField:
			for _, f := range fields {
				if !hasKind(in.Kinds, spec.Fields[f]) {
					continue
				}
				var ferr error
				err := add(in.Name+" in ."+f, "."+f, in, func(r *Request) {
					r.Body, ferr = setField(r.Body, f, json.RawMessage(in.JSON))
				}, f)
				if err == nil {
					err = ferr
				}
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", rt.Key(), f, err)
				}
			}
		}
	}
	for _, x := range spec.Extra {
		body, err := json.Marshal(x.Body)
		if err != nil {
			return nil, err
		}
		in := Input{Name: x.Name, Where: InBody, Raw: body, Why: x.Why}
		out = append(out, Case{Name: x.Name, Input: in, Req: Request{Route: rt, Params: spec.Params, Body: body}})
	}
	if spec.Control != 0 {
		body, err := json.Marshal(spec.Template)
		if err != nil {
			return nil, err
		}
		h := Harmless{Status: spec.Control, Why: "the valid template: the hostile cases were rejected for their hostile part"}
		out = append(out, Case{Name: "control/template", Req: Request{Route: rt, Params: spec.Params, Body: body}, Control: true,
			Expect: Expect{Harmless: &h, Effects: true}})
	}
	return out, nil
}

func hasKind(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
