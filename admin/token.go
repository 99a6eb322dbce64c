package admin

import (
	"fmt"
	"os"
	"strings"
)

// TokenEnv is the environment variable holding the admin bearer token.
const TokenEnv = "NOTIFIER_ADMIN_TOKEN"

// LoadToken returns the admin token: the trimmed content of file when one is given (an
// unreadable or empty file is an error, never a silently open API), else $NOTIFIER_ADMIN_TOKEN,
// else "" (no token). The token itself never appears in an error.
func LoadToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv(TokenEnv)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("admin token file %q: %w", file, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %q is empty", file)
	}
	return tok, nil
}
