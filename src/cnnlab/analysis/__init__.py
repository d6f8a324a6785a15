"""Analysis without real compute: shapes, parameters, MACs, memory."""

from cnnlab.analysis.report import DTYPES, AnalysisReport, LayerReport, analyze
from cnnlab.analysis.textbook import TextbookMemory, textbook_memory
from cnnlab.analysis.walk import LayerRecord, Walk, walk

__all__ = ["DTYPES", "AnalysisReport", "LayerRecord", "LayerReport", "TextbookMemory",
           "Walk", "analyze", "textbook_memory", "walk"]
