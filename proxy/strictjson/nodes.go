package strictjson

import "encoding/json"

// Kind is the JSON type of a Node.
type Kind uint8

// The kinds of Node.
const (
	Null Kind = iota
	False
	True
	Number
	String
	Object
	Array
)

// Node is one value of a Doc.
type Node struct {
	// Text is a string's value, or a number's source text.
	Text string
	// Name is the member name when the value is an object member.
	Name string
	// Len is the number of an object's members or an array's elements.
	Len int32
	// Next is the index in Doc.Nodes of the node after this value and all
	// it contains.
	Next int32
	// Kind is the value's type.
	Kind Kind
}

// Doc is a parsed document as a flat list of values in document order: an
// object or array is followed by its members or elements, each followed by
// what it contains. The first member or element of the node at i is at i+1;
// the one after the member or element at j is at Nodes[j].Next. Members keep
// the order of the text, and their names are unique.
//
// A Doc costs no allocation per value, unlike the tree Parse returns; reuse
// one across documents with Reset and ParseString.
type Doc struct {
	Nodes []Node
}

// Reset empties d, dropping its references to the last document.
func (d *Doc) Reset() {
	clear(d.Nodes)
	d.Nodes = d.Nodes[:0]
}

// Member returns the index of the member of the object at i named name.
func (d *Doc) Member(i int32, name string) (int32, bool) {
	n := d.Nodes[i].Len
	j := i + 1
	for k := int32(0); k < n; k++ {
		if d.Nodes[j].Name == name {
			return j, true
		}
		j = d.Nodes[j].Next
	}
	return 0, false
}

// Value returns the value at i as Parse would: map[string]any for objects,
// []any for arrays, string, json.Number, bool or nil.
func (d *Doc) Value(i int32) any {
	n := &d.Nodes[i]
	switch n.Kind {
	case Object:
		m := make(map[string]any, n.Len)
		j := i + 1
		for k := int32(0); k < n.Len; k++ {
			m[d.Nodes[j].Name] = d.Value(j)
			j = d.Nodes[j].Next
		}
		return m
	case Array:
		a := make([]any, n.Len)
		j := i + 1
		for k := range a {
			a[k] = d.Value(j)
			j = d.Nodes[j].Next
		}
		return a
	case String:
		return n.Text
	case Number:
		return json.Number(n.Text)
	case True:
		return true
	case False:
		return false
	}
	return nil
}
