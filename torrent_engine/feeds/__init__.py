"""Feeds (RSS, Atom) read by the daemon, and the rules that add their articles' torrents as jobs
(qBittorrent's RSS reader and auto-downloader): ``FeedReader`` over a ``JobService``, its record
(``state``) and its rules (``rules``), pure but for the reader."""

from .reader import FEEDS_FILE, FeedReader
from .rules import FeedRule, RuleError, rule_from_json, rule_json
from .state import FeedConflict, FeedInputError, FeedMissing, FeedState

__all__ = ["FEEDS_FILE", "FeedConflict", "FeedInputError", "FeedMissing", "FeedReader", "FeedRule",
           "FeedState", "RuleError", "rule_from_json", "rule_json"]
