package web

// deDevice is German for the device flow's page (portal/device.go,
// templates/device.html) and its messages (account/device.go).
var deDevice = map[string]string{
	"Connect a device": "Ein Gerät verbinden",
	"The device is connected. You can go back to it now.": "Das Gerät ist verbunden. Sie können jetzt zu ihm zurückkehren.",
	"The device was not allowed to sign in.":              "Das Gerät wurde nicht angemeldet.",
	"on a device wants to:":                               "auf einem Gerät möchte:",
	"Approve only if your device shows this code:":        "Erlauben Sie es nur, wenn Ihr Gerät diesen Code anzeigt:",
	"Approve":                           "Erlauben",
	"Enter the code your device shows.": "Geben Sie den Code ein, den Ihr Gerät anzeigt.",
	"Choose Approve or Deny.":           "Wählen Sie Erlauben oder Ablehnen.",
	"This code is wrong, has expired or was used already. Check the code your device shows, or start again on the device.": "Dieser Code ist falsch, abgelaufen oder wurde schon verwendet. Prüfen Sie den Code auf Ihrem Gerät oder fangen Sie auf dem Gerät neu an.",

	// With the device flow, refresh tokens come with device codes too (account/clients.go).
	"The refresh_token grant needs authorization_code or the device code grant too: refresh tokens are only issued with them.": "Der Grant refresh_token braucht auch authorization_code oder den Device-Code-Grant: Refresh-Tokens gibt es nur zusammen mit ihnen.",
}
