package run

import (
	"strings"
	"unicode/utf8"
)

// ShellLine renders argv as one line that a POSIX shell (bash for the $'…'
// form) would split back into the same words. Errors and [Fake]
// transcripts use it.
func ShellLine(argv ...string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(Quote(a))
	}
	return b.String()
}

// Quote returns s quoted for a shell, leaving it bare when it has no
// special characters. The result is always a single line: a string with
// control characters or invalid UTF-8 is rendered in bash's $'…' form with
// escapes, anything else that needs quoting in single quotes.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe, printable := true, utf8.ValidString(s)
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			printable = false
		}
		if !isSafe(r) {
			safe = false
		}
	}
	switch {
	case safe:
		return s
	case printable:
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}

// isSafe reports whether r needs no quoting in any position of a word.
func isSafe(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("-_./:,+@%=", r)
}
