"""What training writes and serving reads, and nothing else: the feature contract
(features), the bundle format and its verification (bundle), the serving form's runtime
(serving_form), the Pipeline's own transformers (transformers), the decision rule and
probability buckets (decision). training/ fits and exports into it; service/ reads from it;
neither imports the other.
"""
