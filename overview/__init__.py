"""The staff's first screen: what needs a person now, what fills up, what this month bills."""
