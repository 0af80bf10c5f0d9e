"""Development and test stand-ins for outside services (an SMTP sink, Twilio-like SMS and
payment-provider sandboxes). Not product code: nothing in the product imports them."""
