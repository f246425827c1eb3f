package web

// deWebhooks is German for the webhooks' messages.
var deWebhooks = map[string]string{
	"Only a user has their own webhooks.":              "Nur ein Benutzer hat eigene Webhooks.",
	"No such webhook.":                                 "Diesen Webhook gibt es nicht.",
	"The URL %s.":                                      "Die URL %s.",
	"At most %d event types.":                          "Höchstens %d Ereignistypen.",
	"%q is not an event type (such as user.created).":  "%q ist kein Ereignistyp (wie user.created).",
	"There are %d webhooks already, the most allowed.": "Es gibt schon %d Webhooks, so viele wie erlaubt.",
}
