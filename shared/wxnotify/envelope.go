package wxnotify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// parseEnvelope decodes the notification envelope with a small purpose-built
// scanner: the envelope is a flat object of strings plus the resource object,
// and most of its bytes are one long base64 string that encoding/json would
// scan byte by byte twice (validate, then decode). Unknown keys of any JSON
// type are skipped; keys match exactly (WeChat Pay sends lower-case names);
// a duplicate key keeps the last value, as encoding/json does. Strings with
// escapes fall back to encoding/json for that literal. Anything that is not
// a well-formed JSON object is rejected.
func parseEnvelope(b []byte) (Envelope, []byte, error) {
	var env Envelope
	var ciphertext []byte
	p := parser{b: b}
	err := p.object(func(key []byte) error {
		switch string(key) {
		case "id":
			return p.str(&env.ID)
		case "create_time":
			return p.str(&env.CreateTime)
		case "event_type":
			return p.str(&env.EventType)
		case "resource_type":
			return p.str(&env.ResourceType)
		case "summary":
			return p.str(&env.Summary)
		case "resource":
			return p.object(func(k []byte) error {
				switch string(k) {
				case "algorithm":
					return p.str(&env.Resource.Algorithm)
				case "ciphertext":
					raw, err := p.raw()
					ciphertext = raw
					return err
				case "associated_data":
					return p.str(&env.Resource.AssociatedData)
				case "nonce":
					return p.str(&env.Resource.Nonce)
				case "original_type":
					return p.str(&env.Resource.OriginalType)
				}
				return p.skip(0)
			})
		}
		return p.skip(0)
	})
	if err != nil {
		return Envelope{}, nil, err
	}
	p.ws()
	if p.i != len(p.b) {
		return Envelope{}, nil, errors.New("data after the JSON object")
	}
	return env, ciphertext, nil
}

type parser struct {
	b []byte
	i int
}

const maxDepth = 64

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) expect(c byte) error {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != c {
		return fmt.Errorf("expected %q at byte %d", c, p.i)
	}
	p.i++
	return nil
}

// object parses {"k": v, ...}, calling field for each key with the parser
// positioned before the value. The key slice is only valid during the call
// (switch string(key) compares without allocating).
func (p *parser) object(field func(key []byte) error) error {
	if err := p.expect('{'); err != nil {
		return err
	}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		key, err := p.raw()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		p.ws()
		if p.i >= len(p.b) {
			return errors.New("unterminated object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return fmt.Errorf("expected ',' or '}' at byte %d", p.i)
		}
	}
}

// str parses a string value into dst.
func (p *parser) str(dst *string) error {
	b, err := p.raw()
	if err != nil {
		return err
	}
	*dst = string(b)
	return nil
}

// raw parses a string and returns its unescaped bytes: a sub-slice of the
// input when the literal has no escapes (the common case, found with
// IndexByte), a decoded copy otherwise. The input was signature-verified
// before any of this runs.
func (p *parser) raw() ([]byte, error) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, fmt.Errorf("expected a string at byte %d", p.i)
	}
	start := p.i + 1
	q := bytes.IndexByte(p.b[start:], '"')
	if q < 0 {
		return nil, errors.New("unterminated string")
	}
	if seg := p.b[start : start+q]; bytes.IndexByte(seg, '\\') < 0 && utf8.Valid(seg) {
		p.i = start + q + 1
		return p.b[start : start+q], nil
	}
	for j := start; j < len(p.b); j++ {
		switch p.b[j] {
		case '\\':
			j++
		case '"':
			var s string
			if err := json.Unmarshal(p.b[start-1:j+1], &s); err != nil {
				return nil, fmt.Errorf("bad string at byte %d", start-1)
			}
			p.i = j + 1
			return []byte(s), nil
		}
	}
	return nil, errors.New("unterminated string")
}

// skip passes over any JSON value.
func (p *parser) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("nesting too deep")
	}
	p.ws()
	if p.i >= len(p.b) {
		return errors.New("missing value")
	}
	switch c := p.b[p.i]; {
	case c == '"':
		_, err := p.raw()
		return err
	case c == '{':
		return p.object(func([]byte) error { return p.skip(depth + 1) })
	case c == '[':
		p.i++
		p.ws()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return nil
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.i >= len(p.b) {
				return errors.New("unterminated array")
			}
			if p.b[p.i] == ']' {
				p.i++
				return nil
			}
			if p.b[p.i] != ',' {
				return fmt.Errorf("expected ',' or ']' at byte %d", p.i)
			}
			p.i++
		}
	default:
		// number, true, false, null: take the literal and let encoding/json judge it.
		j := p.i
		for j < len(p.b) && !isDelim(p.b[j]) {
			j++
		}
		var v any
		if err := json.Unmarshal(p.b[p.i:j], &v); err != nil {
			return fmt.Errorf("bad literal at byte %d", p.i)
		}
		p.i = j
		return nil
	}
}

func isDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}
