"""Web events: page views and form submits delivered by the tracking side."""
