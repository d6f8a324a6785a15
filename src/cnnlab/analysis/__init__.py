"""Analysis without real compute: shapes, parameters, MACs, memory."""

from cnnlab.analysis.report import DTYPES, AnalysisReport, LayerReport, analyze
from cnnlab.analysis.textbook import TextbookMemory, textbook_memory
from cnnlab.analysis.walk import LayerRecord, walk

__all__ = ["DTYPES", "AnalysisReport", "LayerRecord", "LayerReport", "TextbookMemory",
           "analyze", "textbook_memory", "walk"]
