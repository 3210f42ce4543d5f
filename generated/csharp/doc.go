// Package csharp holds the chat demo's generated C# client SDK for Unity and
// Godot .NET games: Chat.cs and Login.cs (messages and typed clients) and
// Runtime/ (the MQTT client, JSON codecs and transports they use, C# 7.2 with
// no package dependencies). Copy this directory into a Unity project's
// Assets/. mqantgen writes every file here except this one.
package csharp

//go:generate go run github.com/mqantgen/mqantgen/cmd/mqantgen -go=false -csharp . ../../demo/chat ../../demo/login
