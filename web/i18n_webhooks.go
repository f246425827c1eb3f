package web

// deWebhooks is German for the webhooks' messages.
var deWebhooks = map[string]string{
	"Only a user has their own webhooks.": "Nur ein Benutzer hat eigene Webhooks.",
	"No such webhook.":                    "Diesen Webhook gibt es nicht.",
	"The URL must be at most %d bytes.":   "Die URL darf höchstens %d Bytes lang sein.",
	"The URL's address %s is not a public one: webhooks call it only when its network is in webhooks.allow_networks.": "Die Adresse %s der URL ist nicht öffentlich: Webhooks rufen sie nur auf, wenn ihr Netz in webhooks.allow_networks steht.",
	"The URL %s.":             "Die URL %s.",
	"At most %d event types.": "Höchstens %d Ereignistypen.",
	"%q is not an event type (such as user.created).":  "%q ist kein Ereignistyp (wie user.created).",
	"There are %d webhooks already, the most allowed.": "Es gibt schon %d Webhooks, so viele wie erlaubt.",
}
