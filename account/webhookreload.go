package account

import "context"

// Reload reads every webhook into memory again: a replica does after
// another replica changed them (storage.ChangeWebhooks).
func (s *WebhookService) Reload(ctx context.Context) error { return s.reload(ctx) }
