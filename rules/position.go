package rules

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/file"
	"gopkg.in/yaml.v3"
)

// source is one file being loaded: its name as shown in errors, its bytes, and the problems
// found in it so far.
type source struct {
	name string
	data []byte
	errs *[]error
}

// errorf records a problem at node n.
func (s *source) errorf(n *yaml.Node, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	s.errAt(line, col, fmt.Sprintf(format, args...), nil)
}

// wrap records cause at node n, as "what: cause".
func (s *source) wrap(n *yaml.Node, what string, cause error) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	s.errAt(line, col, what+": "+cause.Error(), cause)
}

func (s *source) errAt(line, col int, msg string, cause error) {
	*s.errs = append(*s.errs, &Error{File: s.name, Line: line, Col: col, Msg: msg, Err: cause})
}

// exprError records an expression compile error, positioned inside the scalar n when expr gives
// a position (see LIBRARY-NOTES C: *file.Error has a 1-based Line, a 0-based Column and a rune
// offset From; the AsBool result-type error has none and is reported at the node).
func (s *source) exprError(n *yaml.Node, field string, err error) {
	var fe *file.Error
	if !errors.As(err, &fe) || fe.Line == 0 {
		s.wrap(n, field, err)
		return
	}
	line, col := s.inScalar(n, fe.Line, fe.Column)
	s.errAt(line, col, field+": "+fe.Message, err)
}

// inScalar maps a position inside the value of scalar node n (line 1-based, col 0-based, both
// counted in the decoded value) to a file position (both 1-based). It handles plain, single- and
// double-quoted scalars (with escapes and line folding) and literal "|" and folded ">" blocks.
func (s *source) inScalar(n *yaml.Node, line, col int) (int, int) {
	if n == nil || n.Line == 0 {
		return 1, 1
	}
	// Rune offset of the position in the value.
	off := 0
	v := n.Value
	for l := 1; l < line; l++ {
		i := strings.IndexByte(v, '\n')
		if i < 0 {
			break
		}
		off += utf8.RuneCountInString(v[:i+1])
		v = v[i+1:]
	}
	off += col
	if n.Style&yaml.LiteralStyle != 0 {
		// Literal block: value lines are file lines after the header, shifted by the indent.
		indent := s.blockIndent(n)
		return n.Line + line, indent + col + 1
	}
	p := s.scalarStart(n)
	if p < 0 {
		return n.Line, n.Column
	}
	p = walkScalar(s.data, p, n, off)
	return s.lineCol(p)
}

// scalarStart is the byte offset where the content of n starts: after the quote of a quoted
// scalar, at the next line for a block scalar.
func (s *source) scalarStart(n *yaml.Node) int {
	p := s.offset(n.Line, n.Column)
	if p < 0 {
		return -1
	}
	switch {
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return p + 1
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		i := bytes.IndexByte(s.data[p:], '\n')
		if i < 0 {
			return len(s.data)
		}
		return p + i + 1
	}
	return p
}

// blockIndent is the indentation (in columns) of the first non-blank content line of a block
// scalar.
func (s *source) blockIndent(n *yaml.Node) int {
	p := s.scalarStart(n)
	for p >= 0 && p < len(s.data) {
		end := bytes.IndexByte(s.data[p:], '\n')
		lineText := s.data[p:]
		if end >= 0 {
			lineText = s.data[p : p+end]
		}
		trimmed := strings.TrimLeft(string(lineText), " ")
		if strings.TrimSpace(trimmed) != "" {
			return len(lineText) - len(trimmed)
		}
		if end < 0 {
			break
		}
		p += end + 1
	}
	return n.Column + 1
}

// offset converts a 1-based line and column (in characters) to a byte offset, -1 if outside.
func (s *source) offset(line, col int) int {
	p := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(s.data[p:], '\n')
		if i < 0 {
			return -1
		}
		p += i + 1
	}
	for c := 1; c < col && p < len(s.data); c++ {
		if s.data[p] == '\n' {
			break
		}
		_, sz := utf8.DecodeRune(s.data[p:])
		p += sz
	}
	return p
}

// lineCol converts a byte offset to a 1-based line and column (in characters).
func (s *source) lineCol(p int) (int, int) {
	if p > len(s.data) {
		p = len(s.data)
	}
	line, start := 1, 0
	for i := 0; i < p; i++ {
		if s.data[i] == '\n' {
			line++
			start = i + 1
		}
	}
	return line, utf8.RuneCount(s.data[start:p]) + 1
}

// walkScalar advances from byte p (the start of the content of n) over the source text of the
// first k runes of n.Value and returns the byte offset of rune k. Source characters that the
// decoded value does not contain (indentation, folded line breaks, escape sequences, doubled
// single quotes) are skipped; value spaces made by folding consume no source. It is best effort
// on malformed input and never reads outside src.
func walkScalar(src []byte, p int, n *yaml.Node, k int) int {
	v := []rune(n.Value)
	dq := n.Style&yaml.DoubleQuotedStyle != 0
	sq := n.Style&yaml.SingleQuotedStyle != 0
	isSpace := func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }
	for i := 0; i < k && i < len(v) && p < len(src); {
		r, sz := utf8.DecodeRune(src[p:])
		switch {
		case dq && r == '\\':
			if p+1 >= len(src) {
				return len(src)
			}
			switch src[p+1] {
			case '\n':
				p += 2 // escaped line break: no value character
				continue
			case 'x':
				p += 4
			case 'u':
				p += 6
			case 'U':
				p += 10
			default:
				p += 2
			}
			i++
		case r == v[i]:
			p += sz
			if sq && r == '\'' && p < len(src) && src[p] == '\'' {
				p++
			}
			i++
		case isSpace(r):
			p += sz
		case isSpace(v[i]):
			i++
		default:
			p += sz
			i++
		}
	}
	// The character at k may be preceded by source-only whitespace (indentation).
	if k < len(v) && !isSpace(v[k]) {
		for p < len(src) && (src[p] == ' ' || src[p] == '\t' || src[p] == '\n' || src[p] == '\r') {
			p++
		}
	}
	if p > len(src) {
		p = len(src)
	}
	return p
}
